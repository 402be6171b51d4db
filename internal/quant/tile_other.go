//go:build !amd64 || purego

package quant

func tileQ80Aux() bool { return false }

func dotTileF32(rows []float32, vs *[4]*Vec, out *[4][4]float32) bool { return false }

func dotTileQ80(rows []byte, rowBytes int, vs *[4]*Vec, out *[4][4]float32) bool {
	return false
}

func dotTileQ4KN(rows []byte, rowBytes int, vs []Vec, out []float32, stride int) int { return 0 }
