// Command kstatus prints what kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status) computes for
// one object: it reads the object as JSON on stdin and writes {"status", "message"} as JSON.
// Flux's health checks and `kubectl wait`-like tools use this library: the kvcert tests run
// the live Certificates through it (tests/integration/operator/test_gitops_health.py).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: read stdin:", err)
		os.Exit(2)
	}
	// Unstructured's own decoder keeps integers int64, as the API machinery reads them.
	object := &unstructured.Unstructured{}
	if err := object.UnmarshalJSON(raw); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: parse JSON:", err)
		os.Exit(2)
	}
	result, err := status.Compute(object)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: compute:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(map[string]string{
		"status":  result.Status.String(),
		"message": result.Message,
	})
	fmt.Println(string(out))
}
