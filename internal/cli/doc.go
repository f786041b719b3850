// Package cli implements gatehouse's commands. Each command is a function
// that returns (exit code, error), so it can be tested without a process.
package cli
