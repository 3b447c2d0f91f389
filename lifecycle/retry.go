package lifecycle

import (
	"container/heap"
	"math/rand/v2"
	"time"
)

// backoffTypeExponential is the backoff_type of observability.step.backoff.
const backoffTypeExponential = "exponential"

// injectedTypes are the error types FailRate draws from; validation_error is
// permanent, so a run with failures shows retries, exhausted retries and
// immediate failures.
var injectedTypes = [...]string{ErrorTypeHandler, ErrorTypeTimeout, ErrorTypeValidation}

// policy is the engine's retry and fault-injection configuration.
type policy struct {
	failRate    float64
	maxAttempts int
	base, max   time.Duration
}

// inject draws one attempt's fate: "" to run the handler, or the error type
// to fail it with. At rate 0 it draws nothing.
func (p *policy) inject(r *rand.PCG) string {
	if p.failRate <= 0 || unitFloat(r) >= p.failRate {
		return ""
	}
	return injectedTypes[r.Uint64()%uint64(len(injectedTypes))]
}

// backoff returns the wait after failed attempt n: base·2^(n-1) capped at
// max, jittered uniformly into [d/2, d].
func (p *policy) backoff(n int, r *rand.PCG) time.Duration {
	d := p.base
	for i := 1; i < n && d < p.max; i++ {
		d *= 2
	}
	d = min(d, p.max)
	half := d / 2
	return half + time.Duration(r.Uint64()%uint64(d-half+1))
}

// unitFloat returns a float in [0, 1) from r, as rand.Float64 does.
func unitFloat(r *rand.PCG) float64 { return float64(r.Uint64()<<11>>11) / (1 << 53) }

// retry is a step attempt due to be enqueued again.
type retry struct {
	due  time.Time // on the real clock
	task *taskRun
	step int
}

// retryHeap is a min-heap of due retries owned by the orchestration
// goroutine, which waits for its head with a single timer. Entries of
// tasks that failed or were cancelled stay until due and are then ignored.
type retryHeap []retry

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h retryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *retryHeap) Push(x any)        { *h = append(*h, x.(retry)) }
func (h *retryHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = retry{}
	*h = old[:len(old)-1]
	return r
}

func (h *retryHeap) add(r retry) { heap.Push(h, r) }

// next returns the earliest due time.
func (h retryHeap) next() (time.Time, bool) {
	if len(h) == 0 {
		return time.Time{}, false
	}
	return h[0].due, true
}

// popDue removes and returns the retries due at now.
func (h *retryHeap) popDue(now time.Time) []retry {
	var out []retry
	for len(*h) > 0 && !(*h)[0].due.After(now) {
		out = append(out, heap.Pop(h).(retry))
	}
	return out
}
