// Package archtest holds repository-wide guardrail tests: rules about the
// shape of the code base (documentation, layering) that no single package
// can check for itself. It contains no production code.
package archtest
