// Package telemetry sets up gatehouse's logs: the operational log and the
// JSON audit stream, one object per event.
package telemetry
