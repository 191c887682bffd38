package pgstore

import (
	"fmt"
	"io"
	"time"
)

// WriteMetrics implements the server's MetricsWriter: Prometheus text for
// the change listener and the connection pool.
func (s *Store) WriteMetrics(w io.Writer) {
	connected := 0
	if s.connected.Load() {
		connected = 1
	}
	var down float64
	s.stateMu.Lock()
	if !s.connected.Load() && !s.downSince.IsZero() {
		down = time.Since(s.downSince).Seconds()
	}
	s.stateMu.Unlock()
	unconfirmed := 0.0
	if !s.cfg.noListener {
		unconfirmed = s.unconfirmedFor().Seconds()
	}
	st := s.pool.Stat()
	fmt.Fprintf(w, `# HELP jwtgate_store_connected Whether the PostgreSQL key-change listener is connected (1) or not (0).
# TYPE jwtgate_store_connected gauge
jwtgate_store_connected %d
# HELP jwtgate_store_disconnected_seconds How long the key-change listener has been disconnected (0 while connected).
# TYPE jwtgate_store_disconnected_seconds gauge
jwtgate_store_disconnected_seconds %.3f
# HELP jwtgate_store_reconnects_total Times the key-change listener reconnected after losing its connection.
# TYPE jwtgate_store_reconnects_total counter
jwtgate_store_reconnects_total %d
# HELP jwtgate_store_notifications_total Key-change notifications received.
# TYPE jwtgate_store_notifications_total counter
jwtgate_store_notifications_total %d
# HELP jwtgate_store_invalidate_all_total Times all cached keys and tokens were dropped (reconnection, max-stale bound, TRUNCATE).
# TYPE jwtgate_store_invalidate_all_total counter
jwtgate_store_invalidate_all_total %d
# HELP jwtgate_store_revision The last change revision polled from jwtgate_revision.
# TYPE jwtgate_store_revision gauge
jwtgate_store_revision %d
# HELP jwtgate_store_poll_errors_total Failed polls of the change revision.
# TYPE jwtgate_store_poll_errors_total counter
jwtgate_store_poll_errors_total %d
# HELP jwtgate_store_missed_notifications_total Polls that found a key change the listener was not told of (caches dropped).
# TYPE jwtgate_store_missed_notifications_total counter
jwtgate_store_missed_notifications_total %d
# HELP jwtgate_store_unconfirmed_seconds Time since the last successful poll of the change revision.
# TYPE jwtgate_store_unconfirmed_seconds gauge
jwtgate_store_unconfirmed_seconds %.3f
# HELP jwtgate_store_max_stale_seconds The staleness bound: past it verifies answer 503 (0: no bound).
# TYPE jwtgate_store_max_stale_seconds gauge
jwtgate_store_max_stale_seconds %.3f
# HELP jwtgate_store_pool_connections PostgreSQL pool connections by state.
# TYPE jwtgate_store_pool_connections gauge
jwtgate_store_pool_connections{state="acquired"} %d
jwtgate_store_pool_connections{state="idle"} %d
jwtgate_store_pool_connections{state="constructing"} %d
# HELP jwtgate_store_pool_max_connections Size limit of the PostgreSQL pool.
# TYPE jwtgate_store_pool_max_connections gauge
jwtgate_store_pool_max_connections %d
`, connected, down, s.reconnects.Load(), s.notifications.Load(), s.invalidateAll.Load(),
		s.revision.Load(), s.pollErrors.Load(), s.missed.Load(), unconfirmed, s.cfg.maxStale.Seconds(),
		st.AcquiredConns(), st.IdleConns(), st.ConstructingConns(), st.MaxConns())
}
