package store

import "context"

// The channels a shared database notifies (PostgreSQL's NOTIFY): processes
// that share it learn at once of work another one stored, instead of at their
// next poll.
const (
	// TopicInbox: new inbound events were stored (Enqueue).
	TopicInbox = "funnel_inbox"
	// TopicLeader: the leader gave its lease up (Resign): a follower may take
	// it now rather than after it lapses.
	TopicLeader = "funnel_leader"
)

// Listener is a driver whose database several processes share and which can
// wake them: Listen calls fn with a channel's name each time it is notified,
// and once for every channel after each (re)connection (a notification may
// have been missed meanwhile), until ctx ends.
type Listener interface {
	Listen(ctx context.Context, dsn string, channels []string, fn func(channel string)) error
}

// Listen calls fn with a channel's name each time one of channels is notified,
// until ctx ends. On a database no other process shares (SQLite) there is
// nothing to hear: it returns nil at once.
func (s *DB) Listen(ctx context.Context, channels []string, fn func(channel string)) error {
	l, ok := s.drv.(Listener)
	if !ok {
		return nil
	}
	return l.Listen(ctx, s.dsn, channels, fn)
}
