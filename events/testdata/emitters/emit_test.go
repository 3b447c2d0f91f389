package emit

import "github.com/sextant-telemetry/sextant/events"

func g() { emit(events.TaskFailed) }
