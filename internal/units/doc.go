// Package units parses and formats the durations ("90d", "2y", "30m") and
// sizes ("64KiB", "1MiB") used on the command line and in the config.
package units
