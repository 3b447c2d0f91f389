package proctest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/internal/proctest"
)

func TestLeftoversFindsAChildUntilItIsReaped(t *testing.T) {
	dir := t.TempDir()
	bin, err := proctest.Build(dir, "sleeper", "./testdata/sleeper")
	require.NoError(t, err)

	cmd := exec.Command(bin)
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid

	left, err := proctest.Leftovers(dir)
	require.NoError(t, err)
	i := slices.IndexFunc(left, func(p proctest.Proc) bool { return p.PID == pid })
	require.GreaterOrEqual(t, i, 0, "the running child must be found: %v", left)
	require.Equal(t, os.Getpid(), left[i].PPID)
	require.Equal(t, filepath.Join(dir, "sleeper"), left[i].Exe)

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	left, err = proctest.Leftovers(dir)
	require.NoError(t, err)
	require.False(t, slices.ContainsFunc(left, func(p proctest.Proc) bool { return p.PID == pid }), "a reaped child is gone: %v", left)
}

func TestBuildReportsCompilerErrors(t *testing.T) {
	_, err := proctest.Build(t.TempDir(), "x", "./testdata/broken")
	require.ErrorContains(t, err, "go build ./testdata/broken")
	require.ErrorContains(t, err, "undefined: nothing")
}
