package config

import (
	"strings"
	"testing"
)

func TestRouteUpgrades(t *testing.T) {
	f, err := Parse("g.yaml", []byte(minimal+"    upgrades: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if u := f.Config.Routes[0].Upgrades; u == nil || len(u) != 0 {
		t.Errorf("upgrades: [] decoded as %#v, want empty and not nil (nil means the default)", u)
	}
	f, err = Parse("g.yaml", []byte(minimal))
	if err != nil || f.Config.Routes[0].Upgrades != nil {
		t.Errorf("absent upgrades: %#v, %v", f.Config.Routes[0].Upgrades, err)
	}
	for value, want := range map[string]string{
		"[h2c]":             `g.yaml:8: routes[0].upgrades[0]: h2c is never passed`,
		"[websocket, spdy]": `g.yaml:8: routes[0].upgrades[1]: "spdy" is not a supported upgrade`,
	} {
		_, err := Parse("g.yaml", []byte(minimal+"    upgrades: "+value+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("upgrades: %s: %v, want %q", value, err, want)
		}
	}
}
