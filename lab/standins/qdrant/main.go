// qdrant-standin: the phoenix lab's stand-in for Qdrant. It is NOT Qdrant: no vector search,
// no gRPC, no real storage engine. It implements the REST endpoints phoenix's qdrant role and
// tests use, with the request and response shapes of Qdrant v1.19's OpenAPI spec (the pinned
// release, roles/qdrant/vars.ts QDRANT_VERSION; the spec is docs/reference/qdrant-1.19-openapi.json,
// checked by test/integration/qdrant-contract.test.ts; docs in lab/README.md):
//
//	GET /, /healthz, /livez, /readyz           (no API key needed, as in Qdrant)
//	GET /collections                           {"result":{"collections":[{"name":..}]}}
//	GET /collections/{name}                    CollectionInfo (status, points_count, config{params,hnsw_config,optimizer_config,wal_config})
//	GET /collections/{name}/exists             {"result":{"exists":bool}}
//	PUT /collections/{name}                    CreateCollection (vectors{size,distance,on_disk}, shard_number, ...)
//	PATCH /collections/{name}                  UpdateCollection (vectors{"":{on_disk,hnsw_config}}, params, hnsw_config, optimizers_config)
//	DELETE /collections/{name}
//	PUT /collections/{name}/points             {"points":[{"id","vector","payload"}]}  (upsert)
//	POST /collections/{name}/points/count      {"result":{"count":n}}
//
// Collections and points persist as JSON under <storage>/standin/ (the stack's volume on
// /qdrant/storage; QDRANT__STORAGE__STORAGE_PATH moves it, as Qdrant's storage.storage_path),
// written atomically. With QDRANT__SERVICE__API_KEY set, every other endpoint needs the
// `api-key` header (or `Authorization: Bearer <key>`), as in Qdrant. Every response carries
// `X-Phoenix-Standin: qdrant`. Stdlib only (built offline, CGO_ENABLED=0).
//
// TLS as Qdrant configures it (config/config.yaml of v1.19, copied to
// docs/reference/qdrant-1.19-config.yaml): with QDRANT__SERVICE__ENABLE_TLS=true both ports serve
// HTTPS with QDRANT__TLS__CERT (chain) and QDRANT__TLS__KEY, re-read from disk at most every
// QDRANT__TLS__CERT_TTL seconds (default 3600, as Qdrant's). Each request's log line says
// whether it came over TLS ("tls=TLS1.3") or not ("tls=none").
package main

import (
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Qdrant release whose API this stand-in follows (GET / reports it, marked as a stand-in).
const qdrantAPI = "1.19.2"

type VectorParams struct {
	Size     int    `json:"size"`
	Distance string `json:"distance"`
	// Deprecated in 1.19 ("use memory instead"), still accepted.
	OnDisk *bool `json:"on_disk,omitempty"`
	// 1.19: cold | cached | pinned; overrides on_disk.
	Memory *string         `json:"memory,omitempty"`
	Hnsw   json.RawMessage `json:"hnsw_config,omitempty"`
}

type Params struct {
	Vectors                VectorParams `json:"vectors"`
	ShardNumber            int          `json:"shard_number"`
	ReplicationFactor      int          `json:"replication_factor"`
	WriteConsistencyFactor int          `json:"write_consistency_factor"`
	OnDiskPayload          bool         `json:"on_disk_payload"`
}

type Hnsw struct {
	M                  int     `json:"m"`
	EfConstruct        int     `json:"ef_construct"`
	FullScanThreshold  int     `json:"full_scan_threshold"`
	MaxIndexingThreads int     `json:"max_indexing_threads"`
	OnDisk             bool    `json:"on_disk"`
	Memory             *string `json:"memory,omitempty"`
	PayloadM           *int    `json:"payload_m,omitempty"`
	InlineStorage      *bool   `json:"inline_storage,omitempty"`
}

type Optimizers struct {
	DeletedThreshold       float64 `json:"deleted_threshold"`
	VacuumMinVectorNumber  int     `json:"vacuum_min_vector_number"`
	DefaultSegmentNumber   int     `json:"default_segment_number"`
	MaxSegmentSize         *int    `json:"max_segment_size"`
	MemmapThreshold        *int    `json:"memmap_threshold"`
	IndexingThreshold      int     `json:"indexing_threshold"`
	FlushIntervalSec       int     `json:"flush_interval_sec"`
	MaxOptimizationThreads *int    `json:"max_optimization_threads"`
	PreventUnoptimized     *bool   `json:"prevent_unoptimized,omitempty"`
}

type Point struct {
	ID      json.RawMessage `json:"id"`
	Vector  []float64       `json:"vector"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type Collection struct {
	Name       string                 `json:"name"`
	Params     Params                 `json:"params"`
	Hnsw       Hnsw                   `json:"hnsw_config"`
	Optimizers Optimizers             `json:"optimizer_config"`
	Metadata   map[string]interface{} `json:"metadata,omitempty"`
	Points     map[string]Point       `json:"points"`
}

var (
	mu      sync.Mutex
	dataDir = filepath.Join(storagePath(), "standin", "collections")
	apiKey  = os.Getenv("QDRANT__SERVICE__API_KEY")
	nameRe  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,255}$`)
	started = time.Now()
)

func storagePath() string {
	if p := os.Getenv("QDRANT__STORAGE__STORAGE_PATH"); p != "" {
		return p
	}
	return "/qdrant/storage"
}

func reply(w http.ResponseWriter, code int, result interface{}, start time.Time) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	body := map[string]interface{}{"time": time.Since(start).Seconds()}
	if code >= 400 {
		body["status"] = map[string]string{"error": fmt.Sprint(result)}
	} else {
		body["status"] = "ok"
		body["result"] = result
	}
	_ = json.NewEncoder(w).Encode(body)
}

func path(name string) string { return filepath.Join(dataDir, name+".json") }

func load(name string) (*Collection, error) {
	b, err := os.ReadFile(path(name))
	if err != nil {
		return nil, err
	}
	c := &Collection{}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, err
	}
	if c.Points == nil {
		c.Points = map[string]Point{}
	}
	return c, nil
}

func save(c *Collection) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dataDir, ".tmp-")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	tmp.Close()
	return os.Rename(tmp.Name(), path(c.Name))
}

func info(c *Collection) map[string]interface{} {
	vec := map[string]interface{}{"size": c.Params.Vectors.Size, "distance": c.Params.Vectors.Distance}
	if c.Params.Vectors.OnDisk != nil {
		vec["on_disk"] = *c.Params.Vectors.OnDisk
	}
	if c.Params.Vectors.Memory != nil {
		vec["memory"] = *c.Params.Vectors.Memory
	}
	config := map[string]interface{}{
		"params": map[string]interface{}{
			"vectors":                  vec,
			"shard_number":             c.Params.ShardNumber,
			"replication_factor":       c.Params.ReplicationFactor,
			"write_consistency_factor": c.Params.WriteConsistencyFactor,
			"on_disk_payload":          c.Params.OnDiskPayload,
		},
		"hnsw_config":      c.Hnsw,
		"optimizer_config": c.Optimizers,
		"wal_config":       map[string]int{"wal_capacity_mb": 32, "wal_segments_ahead": 0, "wal_retain_closed": 1},
	}
	if len(c.Metadata) > 0 {
		config["metadata"] = c.Metadata
	}
	return map[string]interface{}{
		"status":                "green",
		"optimizer_status":      "ok",
		"indexed_vectors_count": 0,
		"points_count":          len(c.Points),
		"segments_count":        1,
		"payload_schema":        map[string]interface{}{},
		"config":                config,
	}
}

var distances = map[string]bool{"Cosine": true, "Euclid": true, "Dot": true, "Manhattan": true}

// decodeStrict reads a JSON body and rejects unknown fields, like Qdrant's serde does.
func decodeStrict(r io.Reader, v interface{}) error {
	d := json.NewDecoder(r)
	d.DisallowUnknownFields()
	return d.Decode(v)
}

type createBody struct {
	Vectors                *VectorParams          `json:"vectors"`
	ShardNumber            *int                   `json:"shard_number"`
	ReplicationFactor      *int                   `json:"replication_factor"`
	WriteConsistencyFactor *int                   `json:"write_consistency_factor"`
	OnDiskPayload          *bool                  `json:"on_disk_payload"`
	HnswConfig             map[string]interface{} `json:"hnsw_config"`
	OptimizersConfig       map[string]interface{} `json:"optimizers_config"`
	WalConfig              map[string]interface{} `json:"wal_config"`
	// 1.19 fields the stand-in accepts; only metadata is kept (and answered in config.metadata).
	Payload          map[string]interface{} `json:"payload"`
	StrictModeConfig map[string]interface{} `json:"strict_mode_config"`
	Metadata         map[string]interface{} `json:"metadata"`
}

type vectorDiff struct {
	OnDisk *bool                  `json:"on_disk"`
	Memory *string                `json:"memory"`
	Hnsw   map[string]interface{} `json:"hnsw_config"`
}

type patchBody struct {
	Vectors map[string]vectorDiff `json:"vectors"`
	Params  *struct {
		ReplicationFactor      *int  `json:"replication_factor"`
		WriteConsistencyFactor *int  `json:"write_consistency_factor"`
		OnDiskPayload          *bool `json:"on_disk_payload"`
	} `json:"params"`
	HnswConfig       map[string]interface{} `json:"hnsw_config"`
	OptimizersConfig map[string]interface{} `json:"optimizers_config"`
	StrictModeConfig map[string]interface{} `json:"strict_mode_config"`
	// Merged into the collection's metadata; a key set to null is removed (1.19's UpdateCollection).
	Metadata map[string]interface{} `json:"metadata"`
}

var memories = map[string]bool{"cold": true, "cached": true, "pinned": true}

// merge applies a JSON diff object onto a struct through its JSON form.
func merge(dst interface{}, diff map[string]interface{}) error {
	if len(diff) == 0 {
		return nil
	}
	b, _ := json.Marshal(diff)
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	return d.Decode(dst)
}

func defaults(name string) *Collection {
	return &Collection{
		Name:       name,
		Params:     Params{ShardNumber: 1, ReplicationFactor: 1, WriteConsistencyFactor: 1, OnDiskPayload: true},
		Hnsw:       Hnsw{M: 16, EfConstruct: 100, FullScanThreshold: 10000},
		Optimizers: Optimizers{DeletedThreshold: 0.2, VacuumMinVectorNumber: 1000, IndexingThreshold: 20000, FlushIntervalSec: 5},
		Points:     map[string]Point{},
	}
}

func authorized(r *http.Request) bool {
	if apiKey == "" {
		return true
	}
	got := r.Header.Get("api-key")
	if got == "" {
		got = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(apiKey)) == 1
}

func handle(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w.Header().Set("X-Phoenix-Standin", "qdrant")
	log.Printf("%s %s tls=%s", r.Method, r.URL.Path, tlsName(r))
	p := strings.Trim(r.URL.Path, "/")
	switch p {
	case "":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]interface{}{"title": "qdrant-standin - phoenix lab stand-in, NOT Qdrant", "version": qdrantAPI + "-phoenix-standin", "standin": true})
		return
	case "healthz", "livez", "readyz":
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s check passed (qdrant-standin, up %ds)\n", p, int(time.Since(started).Seconds()))
		return
	}
	if !authorized(r) {
		reply(w, http.StatusUnauthorized, "Must provide an API key or an Authorization bearer token", start)
		return
	}
	parts := strings.Split(p, "/")
	if parts[0] != "collections" {
		reply(w, http.StatusNotFound, "Not found", start)
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if len(parts) == 1 {
		if r.Method != http.MethodGet {
			reply(w, http.StatusMethodNotAllowed, "method not allowed", start)
			return
		}
		names := []map[string]string{}
		entries, _ := os.ReadDir(dataDir)
		list := []string{}
		for _, e := range entries {
			if n := e.Name(); strings.HasSuffix(n, ".json") && !strings.HasPrefix(n, ".") {
				list = append(list, strings.TrimSuffix(n, ".json"))
			}
		}
		sort.Strings(list)
		for _, n := range list {
			names = append(names, map[string]string{"name": n})
		}
		reply(w, http.StatusOK, map[string]interface{}{"collections": names}, start)
		return
	}
	name := parts[1]
	if !nameRe.MatchString(name) {
		reply(w, http.StatusUnprocessableEntity, "Validation error in path parameters: [name: invalid collection name]", start)
		return
	}
	c, err := load(name)
	exists := err == nil
	if err != nil && !os.IsNotExist(err) {
		reply(w, http.StatusInternalServerError, "Service internal error: "+err.Error(), start)
		return
	}
	notFound := func() {
		reply(w, http.StatusNotFound, fmt.Sprintf("Not found: Collection `%s` doesn't exist!", name), start)
	}
	bad := func(msg string) { reply(w, http.StatusBadRequest, "Wrong input: "+msg, start) }
	rest := strings.Join(parts[2:], "/")
	switch {
	case rest == "" && r.Method == http.MethodGet:
		if !exists {
			notFound()
			return
		}
		reply(w, http.StatusOK, info(c), start)
	case rest == "exists" && r.Method == http.MethodGet:
		reply(w, http.StatusOK, map[string]bool{"exists": exists}, start)
	case rest == "" && r.Method == http.MethodPut:
		if exists {
			bad(fmt.Sprintf("Collection `%s` already exists!", name))
			return
		}
		var b createBody
		if err := decodeStrict(r.Body, &b); err != nil {
			bad("Json deserialize error: " + err.Error())
			return
		}
		if b.Vectors == nil || b.Vectors.Size < 1 || !distances[b.Vectors.Distance] {
			bad("vectors: a size >= 1 and a distance (Cosine, Euclid, Dot, Manhattan) are required")
			return
		}
		if b.Vectors.Memory != nil && (!memories[*b.Vectors.Memory] || *b.Vectors.Memory == "pinned") {
			bad("vectors.memory: cold or cached (pinned is not supported for dense vector storage)")
			return
		}
		c = defaults(name)
		c.Params.Vectors = VectorParams{Size: b.Vectors.Size, Distance: b.Vectors.Distance, OnDisk: b.Vectors.OnDisk, Memory: b.Vectors.Memory}
		c.Metadata = b.Metadata
		if b.ShardNumber != nil {
			c.Params.ShardNumber = *b.ShardNumber
		}
		if b.ReplicationFactor != nil {
			c.Params.ReplicationFactor = *b.ReplicationFactor
		}
		if b.WriteConsistencyFactor != nil {
			c.Params.WriteConsistencyFactor = *b.WriteConsistencyFactor
		}
		if b.OnDiskPayload != nil {
			c.Params.OnDiskPayload = *b.OnDiskPayload
		}
		if err := merge(&c.Hnsw, b.HnswConfig); err != nil {
			bad("hnsw_config: " + err.Error())
			return
		}
		if err := merge(&c.Optimizers, b.OptimizersConfig); err != nil {
			bad("optimizers_config: " + err.Error())
			return
		}
		if err := save(c); err != nil {
			reply(w, http.StatusInternalServerError, "Service internal error: "+err.Error(), start)
			return
		}
		reply(w, http.StatusOK, true, start)
	case rest == "" && r.Method == http.MethodPatch:
		if !exists {
			notFound()
			return
		}
		var b patchBody
		if err := decodeStrict(r.Body, &b); err != nil {
			bad("Json deserialize error: " + err.Error())
			return
		}
		for vname, d := range b.Vectors {
			if vname != "" {
				bad(fmt.Sprintf("Not existing vector name error: %s", vname))
				return
			}
			if d.OnDisk != nil {
				c.Params.Vectors.OnDisk = d.OnDisk
			}
			if d.Memory != nil {
				if !memories[*d.Memory] || *d.Memory == "pinned" {
					bad("vectors.memory: cold or cached (pinned is not supported for dense vector storage)")
					return
				}
				c.Params.Vectors.Memory = d.Memory
			}
		}
		for k, v := range b.Metadata {
			if c.Metadata == nil {
				c.Metadata = map[string]interface{}{}
			}
			if v == nil {
				delete(c.Metadata, k)
			} else {
				c.Metadata[k] = v
			}
		}
		if b.Params != nil {
			if b.Params.ReplicationFactor != nil {
				c.Params.ReplicationFactor = *b.Params.ReplicationFactor
			}
			if b.Params.WriteConsistencyFactor != nil {
				c.Params.WriteConsistencyFactor = *b.Params.WriteConsistencyFactor
			}
			if b.Params.OnDiskPayload != nil {
				c.Params.OnDiskPayload = *b.Params.OnDiskPayload
			}
		}
		if err := merge(&c.Hnsw, b.HnswConfig); err != nil {
			bad("hnsw_config: " + err.Error())
			return
		}
		if err := merge(&c.Optimizers, b.OptimizersConfig); err != nil {
			bad("optimizers_config: " + err.Error())
			return
		}
		if err := save(c); err != nil {
			reply(w, http.StatusInternalServerError, "Service internal error: "+err.Error(), start)
			return
		}
		reply(w, http.StatusOK, true, start)
	case rest == "" && r.Method == http.MethodDelete:
		if exists {
			if err := os.Remove(path(name)); err != nil {
				reply(w, http.StatusInternalServerError, "Service internal error: "+err.Error(), start)
				return
			}
		}
		reply(w, http.StatusOK, exists, start)
	case rest == "points" && r.Method == http.MethodPut:
		if !exists {
			notFound()
			return
		}
		var b struct {
			Points []Point `json:"points"`
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			bad("Json deserialize error: " + err.Error())
			return
		}
		for _, pt := range b.Points {
			if len(pt.Vector) != c.Params.Vectors.Size {
				bad(fmt.Sprintf("Vector dimension error: expected dim: %d, got %d", c.Params.Vectors.Size, len(pt.Vector)))
				return
			}
			c.Points[string(pt.ID)] = pt
		}
		if err := save(c); err != nil {
			reply(w, http.StatusInternalServerError, "Service internal error: "+err.Error(), start)
			return
		}
		reply(w, http.StatusOK, map[string]interface{}{"operation_id": 0, "status": "completed"}, start)
	case rest == "points/count" && r.Method == http.MethodPost:
		if !exists {
			notFound()
			return
		}
		reply(w, http.StatusOK, map[string]int{"count": len(c.Points)}, start)
	default:
		reply(w, http.StatusNotFound, "Not found", start)
	}
}

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		log.Fatalf("qdrant-standin: %v", err)
	}
	httpPort := os.Getenv("QDRANT__SERVICE__HTTP_PORT")
	grpcPort := os.Getenv("QDRANT__SERVICE__GRPC_PORT")
	if httpPort == "" {
		httpPort = "6333"
	}
	if grpcPort == "" {
		grpcPort = "6334"
	}
	log.Printf("qdrant-standin: phoenix lab stand-in, NOT Qdrant; http :%s, :%s (no gRPC: same HTTP API), storage %s, api key %s",
		httpPort, grpcPort, dataDir, map[bool]string{true: "required", false: "not set"}[apiKey != ""])
	mux := http.HandlerFunc(handle)
	if os.Getenv("QDRANT__SERVICE__ENABLE_TLS") == "true" {
		c := &certReloader{cert: os.Getenv("QDRANT__TLS__CERT"), key: os.Getenv("QDRANT__TLS__KEY"), ttl: time.Hour}
		if v := os.Getenv("QDRANT__TLS__CERT_TTL"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				log.Fatalf("qdrant-standin: QDRANT__TLS__CERT_TTL=%q is not a number of seconds", v)
			}
			c.ttl = time.Duration(n) * time.Second
		}
		if _, err := c.get(nil); err != nil {
			log.Fatalf("qdrant-standin: TLS: %v", err)
		}
		log.Printf("qdrant-standin: TLS on both ports: cert %s, key %s, re-read every %s", c.cert, c.key, c.ttl)
		serve := func(port string) error {
			srv := &http.Server{Addr: ":" + port, Handler: mux, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get}}
			return srv.ListenAndServeTLS("", "")
		}
		go func() { log.Fatal(serve(grpcPort)) }()
		log.Fatal(serve(httpPort))
	}
	go func() { log.Fatal(http.ListenAndServe(":"+grpcPort, mux)) }()
	log.Fatal(http.ListenAndServe(":"+httpPort, mux))
}

// certReloader serves the certificate files, re-read when ttl has passed (Qdrant's tls.cert_ttl).
type certReloader struct {
	cert, key string
	ttl       time.Duration
	mu        sync.Mutex
	have      *tls.Certificate
	loaded    time.Time
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.have != nil && time.Since(c.loaded) < c.ttl {
		return c.have, nil
	}
	kp, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		if c.have != nil {
			log.Printf("qdrant-standin: TLS: keeping the previous certificate: %v", err)
			return c.have, nil
		}
		return nil, fmt.Errorf("cannot load %s / %s: %v", c.cert, c.key, err)
	}
	c.have, c.loaded = &kp, time.Now()
	return c.have, nil
}

func tlsName(r *http.Request) string {
	if r.TLS == nil {
		return "none"
	}
	switch r.TLS.Version {
	case tls.VersionTLS13:
		return "TLS1.3"
	case tls.VersionTLS12:
		return "TLS1.2"
	}
	return "TLS"
}
