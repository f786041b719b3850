// Package config loads gatehouse's YAML configuration: strict decode (an
// unknown key is an error with file and line), defaults, then validation.
package config
