// Command hello is the smallest realistic Go module: it prints a line and
// exits, using no SDK. It is the ~2 MB module of the compile benchmark.
package main

import "fmt"

func main() {
	fmt.Println("hello from a Go module")
}
