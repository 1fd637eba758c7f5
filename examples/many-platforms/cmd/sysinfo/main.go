// sysinfo prints the platform it was built for and the one it runs on.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	host, _ := os.Hostname()
	fmt.Printf("built for %s/%s, running on %s\n", runtime.GOOS, runtime.GOARCH, host)
}
