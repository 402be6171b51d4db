//go:build race

package provider

// raceEnabled: the race detector slows the engine and model generation ~20x.
const raceEnabled = true
