package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RunWithBinary is a TestMain for tests that run their package's command as a process: it
// builds the package in the working directory into a temporary directory, stores the path in
// *binary, runs the tests and removes the build. It returns the exit code for os.Exit.
func RunWithBinary(m *testing.M, name string, binary *string) int {
	dir, err := os.MkdirTemp("", name+"-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*binary = filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", *binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build %s: %v\n%s", name, err, out)
		return 1
	}
	return m.Run()
}
