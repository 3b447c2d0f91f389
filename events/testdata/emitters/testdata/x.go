package x

import "github.com/sextant-telemetry/sextant/events"

func f() { emit(events.TaskFailed) }
