package health_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/sextant-telemetry/sextant/internal/health"
)

func ExampleNew() {
	reg := health.New(health.WithTTL(time.Second))
	defer func() { _ = reg.Shutdown(context.Background()) }()

	// The bus decides readiness; a plugin being restarted only degrades.
	_ = reg.Register("bus", health.CheckFunc(func(ctx context.Context) health.Result {
		return health.Result{Status: health.StatusHealthy, Details: map[string]any{"depth": 0}}
	}), health.Critical(), health.Timeout(3*time.Second))
	_ = reg.Register("plugins", health.CheckFunc(func(ctx context.Context) health.Result {
		return health.Result{Status: health.StatusUnhealthy, Error: "influx: restarting"}
	}))

	rep, err := reg.Run(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("status:", rep.Status)
	fmt.Println("ready:", rep.Ready())
	fmt.Println("plugins:", rep.Checks["plugins"].Status, rep.Checks["plugins"].Error)
	// Output:
	// status: degraded
	// ready: true
	// plugins: unhealthy influx: restarting
}

func ExampleRegistry_ServeHealth() {
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	reg := health.New(health.WithClock(func() time.Time { return start }))
	defer func() { _ = reg.Shutdown(context.Background()) }()
	_ = reg.Register("circuit_breakers", health.CheckFunc(func(context.Context) health.Result {
		return health.Result{Status: health.StatusHealthy, Details: map[string]any{"open_breakers": 0}}
	}))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", reg.ServeHealth)
	mux.HandleFunc("GET /health/live", reg.ServeLive)
	mux.HandleFunc("GET /health/ready", reg.ServeReady)
	mux.HandleFunc("GET /health/detailed", reg.ServeDetailed)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	fmt.Println(rec.Code)
	fmt.Print(rec.Body.String())
	// Output:
	// 200
	// {
	//   "checks": {
	//     "circuit_breakers": {
	//       "duration_ms": 0,
	//       "status": "healthy"
	//     }
	//   },
	//   "status": "healthy",
	//   "timestamp": "2025-06-01T12:00:00Z",
	//   "uptime_seconds": 0
	// }
}
