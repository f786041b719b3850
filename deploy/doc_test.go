// Package deploy holds what users deploy beside gatehouse (Prometheus
// alerting rules, a Grafana dashboard) and the tests that keep them true
// to the metrics the code exports: promtool checks and unit-tests the
// rules, and a real Prometheus scrapes a real gateway and `ca serve`.
package deploy_test
