// Command grafana_standin answers Grafana's HTTP query API (/api/ds/query, /api/health, /api/org)
// with responses built from grafana-plugin-sdk-go's own backend.QueryDataResponse and data.Frame
// types and marshalled by the SDK's JSON codec: the same code path Grafana's /api/ds/query uses.
// It also signs ID tokens, publishes its signing keys and answers the permission search as Grafana
// does (identity.go).
//
// Each query names a target data source ({"uid","type"}). Type "prometheus" is proxied to a real
// Prometheus (-prometheus-url) and shaped as Grafana's Prometheus data source shapes it; type
// "toto-standin" answers the frame kind its "scenario" field names (see scenarios.go).
//
// It prints its base URL (http://127.0.0.1:PORT) as the first line on stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

type config struct {
	token              string
	tokenNoRBAC        string // a service-account token without users.permissions:read
	forbiddenUID       string
	missingUID         string
	version            string
	prometheusURL      string
	multiStatus        bool
	orgID              int64  // the service account's organisation
	issuer             string // the app URL ID tokens name as iss; default this server's URL + "/"
	noPermissionSearch bool   // an old open-source Grafana: no /api/access-control/users/permissions/search
	ids                *identityState
}

// dsRef is the target data source of one query.
type dsRef struct {
	UID  string `json:"uid"`
	Type string `json:"type"`
}

// dsQuery is one entry of the request's queries: Grafana's common keys plus the target's own.
type dsQuery struct {
	RefID         string          `json:"refId"`
	Datasource    dsRef           `json:"datasource"`
	IntervalMs    float64         `json:"intervalMs"`
	MaxDataPoints int64           `json:"maxDataPoints"`
	Raw           json.RawMessage `json:"-"`
}

type dsRequest struct {
	Queries []json.RawMessage `json:"queries"`
	From    string            `json:"from"`
	To      string            `json:"to"`
}

func main() {
	cfg := config{}
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.StringVar(&cfg.token, "token", envOr("STANDIN_TOKEN", "standin-token"), "the service account's bearer token")
	flag.StringVar(&cfg.tokenNoRBAC, "token-no-rbac", "standin-token-no-rbac", "a second accepted token whose account lacks users.permissions:read")
	flag.Int64Var(&cfg.orgID, "org-id", 1, "the service account's organisation (GET /api/org)")
	flag.StringVar(&cfg.issuer, "issuer", "", "iss of the ID tokens it signs (default: its own URL with a trailing slash)")
	flag.BoolVar(&cfg.noPermissionSearch, "no-permission-search", false, "answer the permission search with 404, as an old open-source Grafana")
	flag.StringVar(&cfg.forbiddenUID, "forbidden-uid", "forbidden-ds", "a data source uid the token may not query (403)")
	flag.StringVar(&cfg.missingUID, "missing-uid", "missing-ds", "a data source uid that does not exist (404)")
	flag.StringVar(&cfg.version, "version", "12.1.0-standin", "version reported by /api/health")
	flag.StringVar(&cfg.prometheusURL, "prometheus-url", os.Getenv("STANDIN_PROMETHEUS_URL"), "Prometheus behind type \"prometheus\"")
	flag.BoolVar(&cfg.multiStatus, "multistatus", false, "answer 207 instead of 400 when a query fails (Grafana's datasourceQueryMultiStatus)")
	flag.Parse()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	if cfg.issuer == "" {
		cfg.issuer = fmt.Sprintf("http://%s/", ln.Addr().String())
	}
	cfg.ids = newIdentityState()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/health", cfg.health)
	mux.HandleFunc("GET /api/org", cfg.authed(cfg.org))
	mux.HandleFunc("POST /api/ds/query", cfg.authed(cfg.query))
	mux.HandleFunc("GET /api/signing-keys/keys", cfg.signingKeys)
	mux.HandleFunc("GET /api/access-control/users/permissions/search", cfg.authed(cfg.permissionSearch))
	mux.HandleFunc("POST /standin/id-token", cfg.idToken)
	mux.HandleFunc("POST /standin/rotate-key", cfg.rotateKey)
	mux.HandleFunc("POST /standin/permissions", cfg.setPermissions)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("http://%s\n", ln.Addr().String())
	os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// writeJSON answers with Grafana's error body shape for API errors.
func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func apiError(w http.ResponseWriter, status int, message, messageID string) {
	body := map[string]any{"message": message, "traceID": ""}
	if messageID != "" {
		body["messageId"] = messageID
		body["statusCode"] = status
		body["extra"] = nil
	}
	writeJSON(w, status, body)
}

// authed checks `Authorization: Bearer <token>` as Grafana's authn does for service-account tokens.
func (c config) authed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if auth == "" {
			apiError(w, http.StatusUnauthorized, "Unauthorized", "auth.unauthorized")
			return
		}
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || (token != c.token && token != c.tokenNoRBAC) {
			apiError(w, http.StatusUnauthorized, "Invalid API key", "api-key.invalid")
			return
		}
		next(w, r)
	}
}

func (c config) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"commit": "standin", "database": "ok", "version": c.version})
}

func (c config) org(w http.ResponseWriter, _ *http.Request) {
	name := "Main Org."
	if c.orgID != 1 {
		name = fmt.Sprintf("Org %d", c.orgID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": c.orgID, "name": name, "address": map[string]string{}})
}

func parseMs(s string) (int64, error) {
	return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
}

func (c config) query(w http.ResponseWriter, r *http.Request) {
	var req dsRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "bad request data", "")
		return
	}
	from, err1 := parseMs(req.From)
	to, err2 := parseMs(req.To)
	if err1 != nil || err2 != nil || len(req.Queries) == 0 {
		apiError(w, http.StatusBadRequest, "bad request data", "")
		return
	}
	queries := make([]dsQuery, 0, len(req.Queries))
	for _, raw := range req.Queries {
		q := dsQuery{Raw: raw}
		if err := json.Unmarshal(raw, &q); err != nil {
			apiError(w, http.StatusBadRequest, "bad request data", "")
			return
		}
		if q.RefID == "" {
			q.RefID = "A"
		}
		// Grafana resolves (and authorizes) every data source before it runs any query.
		switch q.Datasource.UID {
		case c.forbiddenUID:
			apiError(w, http.StatusForbidden, "Access denied to data source", "")
			return
		case c.missingUID, "":
			apiError(w, http.StatusNotFound, "Data source not found", "")
			return
		}
		queries = append(queries, q)
	}

	qdr := backend.NewQueryDataResponse()
	var trickle time.Duration
	for _, q := range queries {
		tr := timeRange{from: time.UnixMilli(from).UTC(), to: time.UnixMilli(to).UTC()}
		var resp backend.DataResponse
		switch q.Datasource.Type {
		case "prometheus":
			resp = c.prometheus(r.Context(), q, tr)
		case standinType:
			var d time.Duration
			resp, d = scenario(r.Context(), q, tr)
			trickle = max(trickle, d)
		default:
			resp = backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourcePlugin,
				fmt.Sprintf("the stand-in has no data source type %q", q.Datasource.Type))
		}
		qdr.Responses[q.RefID] = resp
	}
	body, err := json.Marshal(qdr) // QueryDataResponse.MarshalJSON: the SDK's own codec
	if err != nil {
		apiError(w, http.StatusInternalServerError, "Query data error", "")
		return
	}
	status := http.StatusOK
	for _, resp := range qdr.Responses {
		if resp.Error != nil {
			status = http.StatusBadRequest
			if c.multiStatus {
				status = http.StatusMultiStatus
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if trickle <= 0 {
		_, _ = w.Write(body)
		return
	}
	// Headers now, then the body a few bytes at a time: a server that is slow to finish.
	flusher, _ := w.(http.Flusher)
	for len(body) > 0 {
		n := min(16, len(body))
		if _, err := w.Write(body[:n]); err != nil {
			return
		}
		body = body[n:]
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(trickle):
		}
	}
}
