// Command gatehouse is a secure API access proxy. See internal/cli.
package main

import (
	"os"

	"github.com/gatehouse/gatehouse/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
