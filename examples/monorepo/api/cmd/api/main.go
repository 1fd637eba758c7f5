package main

import (
	"fmt"
	"log"
	"net/http"
	"runtime"
)

func main() {
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "ok %s/%s\n", runtime.GOOS, runtime.GOARCH)
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
