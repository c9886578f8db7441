// Command kstatus reads Kubernetes objects as JSON, one per line on stdin, and prints for each, on one line, the
// status that kstatus (sigs.k8s.io/cli-utils pkg/kstatus/status, the library Flux and Helm 4's --wait use) computes
// for it: {"status": "Current", "message": "..."}, or {"error": "..."} when Compute fails.
//
// The end-to-end tier runs every object of the status contract through it and through the Rust port in
// tests/common/kstatus.rs, and fails when the two disagree, so the port cannot drift from the original.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

func compute(line []byte) result {
	// As a client reads it from the API server: integers as int64 (apimachinery's JSON decoding).
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON(line); err != nil {
		return result{Error: "not a Kubernetes object: " + err.Error()}
	}
	res, err := status.Compute(&u)
	if err != nil {
		return result{Error: err.Error()}
	}
	return result{Status: res.Status.String(), Message: res.Message}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		if len(in.Bytes()) == 0 {
			continue
		}
		if err := out.Encode(compute(in.Bytes())); err != nil {
			fmt.Fprintln(os.Stderr, "kstatus:", err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(1)
	}
}
