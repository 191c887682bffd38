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
# HELP jwtgate_store_pool_connections PostgreSQL pool connections by state.
# TYPE jwtgate_store_pool_connections gauge
jwtgate_store_pool_connections{state="acquired"} %d
jwtgate_store_pool_connections{state="idle"} %d
jwtgate_store_pool_connections{state="constructing"} %d
# HELP jwtgate_store_pool_max_connections Size limit of the PostgreSQL pool.
# TYPE jwtgate_store_pool_max_connections gauge
jwtgate_store_pool_max_connections %d
`, connected, down, s.reconnects.Load(), s.notifications.Load(), s.invalidateAll.Load(),
		st.AcquiredConns(), st.IdleConns(), st.ConstructingConns(), st.MaxConns())
}
