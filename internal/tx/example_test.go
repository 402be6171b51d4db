package tx_test

import (
	"crypto/ed25519"
	"fmt"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/tx"
)

// Building, signing and encoding a Send, as a client does before broadcasting.
func ExampleSign() {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	from := address.FromPubKey(key.Public().(ed25519.PublicKey))
	amount, err := tx.ParseAmount("1.5myc")
	if err != nil {
		panic(err)
	}
	msg, err := tx.NewMsg(tx.Send{To: from, Amount: amount})
	if err != nil {
		panic(err)
	}
	t, err := tx.Sign(tx.Body{ChainID: "mycel-devnet", Sender: from, Nonce: 0, Fee: 1000, Msgs: []tx.Msg{msg}}, key)
	if err != nil {
		panic(err)
	}
	raw, err := tx.Encode(t)
	if err != nil {
		panic(err)
	}
	back, err := tx.Decode(raw)
	fmt.Println(err, back.VerifySignature(), back.ValidateBasic(), tx.FormatAmount(amount))
	// Output: <nil> <nil> <nil> 1.500000myc
}
