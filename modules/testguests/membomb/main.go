// Command membomb allocates memory until the sandbox stops it: 1 MiB at a
// time, every page written so it is really committed, every slice kept.
package main

import (
	"context"

	millrace "github.com/millrace/millrace/guest-sdk"
)

var held [][]byte

func init() {
	millrace.Handle(func(context.Context, struct{}) (int, error) {
		for {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = byte(len(held))
			}
			held = append(held, b)
		}
	})
}

func main() {}
