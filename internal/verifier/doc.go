// Package verifier audits providers: it re-checks answers against the
// bit-reproducible reference engine (Checker), combines the outcomes into
// per-provider scores, and runs the verifier daemon (Verifier).
//
// The re-check is exact where the engine allows it (greedy and seeded
// answers and the logprobs commitment of a provider on the built-in engine)
// and statistical elsewhere: a randomised probability-integral-transform
// test of the output tokens under the registered model (model
// substitution), a rank test, per-token log-probability bands (quantisation
// swaps), finish-reason consistency (truncation, padding), token counts
// (inflation) and the receipt's request and output hashes (tampering).
// Every statistical test has a false-positive rate bounded by construction
// (Bands.Alpha), independent of the model; docs/VERIFICATION.md publishes
// the bands and their calibration.
package verifier
