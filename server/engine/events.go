package engine

import (
	"encoding/json"
	"sync"
	"time"
)

// Event is one thing that happened in a run, as the live event streams
// deliver it.
type Event struct {
	ID     int64           `json:"id" doc:"Increases by one per event in this process; resume with Last-Event-ID."`
	Type   string          `json:"type" enum:"run.started,run.finished,node.started,node.finished,node.progress"`
	RunID  string          `json:"run_id"`
	NodeID string          `json:"node_id,omitempty"`
	Status string          `json:"status,omitempty"`
	Time   time.Time       `json:"time"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// Bus fans events out to subscribers in this process and keeps the most
// recent ones so a reconnecting client can catch up.
type Bus struct {
	mu     sync.Mutex
	next   int64
	recent []Event // ring of the last keep events
	keep   int
	subs   map[chan Event]func(Event) bool
}

// NewBus returns a bus remembering the last keep events.
func NewBus(keep int) *Bus {
	return &Bus{keep: keep, subs: map[chan Event]func(Event) bool{}}
}

// Publish records an event and delivers it to matching subscribers. A
// subscriber too slow to keep up loses events rather than slowing runs;
// it can catch up from Since with its last event id.
func (b *Bus) Publish(e Event) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	e.ID = b.next
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	b.recent = append(b.recent, e)
	if len(b.recent) > b.keep {
		b.recent = b.recent[len(b.recent)-b.keep:]
	}
	for ch, match := range b.subs {
		if match(e) {
			select {
			case ch <- e:
			default:
			}
		}
	}
}

// Subscribe returns a channel of future events that match, the retained
// events after afterID that match (for Last-Event-ID), and a function
// that ends the subscription.
func (b *Bus) Subscribe(afterID int64, match func(Event) bool) (<-chan Event, []Event, func()) {
	ch := make(chan Event, 256)
	b.mu.Lock()
	defer b.mu.Unlock()
	var backlog []Event
	for _, e := range b.recent {
		if e.ID > afterID && match(e) {
			backlog = append(backlog, e)
		}
	}
	b.subs[ch] = match
	return ch, backlog, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}
}
