// portainer-standin: a phoenix LAB STAND-IN for the Portainer CE API. It is NOT Portainer.
//
// Portainer cannot be obtained in the lab, so `phoenix sync` is proven against this program:
// it answers exactly the requests sync makes, with the shapes of
// docs/reference/portainer-api-notes.md (Portainer CE 2.23, with the changes the notes list up to
// the 2.43 OpenAPI, for the pinned 2.45 LTS: docs/releases.md), and it deploys stacks to the REAL
// swarm of the host it runs on with `docker stack deploy`, as Portainer does.
//
//	POST /api/auth                                   {Username,Password} -> {jwt}
//	GET  /api/endpoints                              [Endpoint] (one: the local docker socket)
//	*    /api/endpoints/{id}/docker/...              Docker Engine API proxy (GET; POST secrets/create only)
//	GET  /api/stacks?filters={"SwarmID":..,"EndpointID":..}
//	GET  /api/stacks/{id}/file                       {StackFileContent}
//	POST /api/stacks/create/swarm/string?endpointId= {Name,SwarmID,StackFileContent,Env,FromAppTemplate}
//	PUT  /api/stacks/{id}?endpointId=                {StackFileContent,Env,Prune,RepullImageAndRedeploy}
//	                                                 (PullImage: accepted, deprecated since 2.36, as in 2.45)
//	GET  /api/system/status, /api/status             {Version,InstanceID} (public)
//
// Everything else answers 404 {"message":"portainer-standin: not implemented",...}. Every
// response carries `X-Phoenix-Standin: portainer`. Passwords, tokens, request bodies and stack
// Env values are never logged; the admin password comes from a file (as Portainer's
// --admin-password-file), never from argv.
//
// Stdlib only; built static (CGO_ENABLED=0) by build.sh.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	apiVersion = "2.45.2"
	instanceID = "portainer-standin"
	tokenTTL   = 8 * time.Hour
)

type config struct {
	listen        string
	certFile      string
	keyFile       string
	passwordFile  string
	adminUser     string
	dataDir       string
	dockerCLI     string
	dockerHost    string
	dockerSocket  string
	listenHTTP    string
	endpointName  string
	resolveImage  string
	deployTimeout time.Duration
}

// ---------------------------------------------------------------- stored objects (shapes: notes)

type pair struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type resourceControl struct {
	ID                 int      `json:"Id"`
	ResourceID         string   `json:"ResourceId"`
	SubResourceIDs     []string `json:"SubResourceIds"`
	Type               int      `json:"Type"`
	UserAccesses       []any    `json:"UserAccesses"`
	TeamAccesses       []any    `json:"TeamAccesses"`
	Public             bool     `json:"Public"`
	AdministratorsOnly bool     `json:"AdministratorsOnly"`
	System             bool     `json:"System"`
}

type stack struct {
	ID              int              `json:"Id"`
	Name            string           `json:"Name"`
	Type            int              `json:"Type"`
	EndpointID      int              `json:"EndpointId"`
	SwarmID         string           `json:"SwarmId"`
	EntryPoint      string           `json:"EntryPoint"`
	Env             []pair           `json:"Env"`
	ResourceControl *resourceControl `json:"ResourceControl"`
	Status          int              `json:"Status"`
	ProjectPath     string           `json:"ProjectPath"`
	CreationDate    int64            `json:"CreationDate"`
	CreatedBy       string           `json:"CreatedBy"`
	UpdateDate      int64            `json:"UpdateDate"`
	UpdatedBy       string           `json:"UpdatedBy"`
	AdditionalFiles []string         `json:"AdditionalFiles"`
	AutoUpdate      any              `json:"AutoUpdate"`
	Option          any              `json:"Option"`
	GitConfig       any              `json:"GitConfig"`
	FromAppTemplate bool             `json:"FromAppTemplate"`
	Namespace       string           `json:"Namespace"`
}

type database struct {
	NextID int      `json:"nextId"`
	Stacks []*stack `json:"stacks"`
}

// ---------------------------------------------------------------- server

type server struct {
	cfg      config
	password []byte
	jwtKey   []byte
	mu       sync.Mutex // guards db and serializes deploys (with lockFile across processes)
	lockFile *os.File
	db       database
	dbStamp  string
	docker   *http.Client
	proxy    *httputil.ReverseProxy
}

type apiError struct {
	status  int
	message string
	details string
}

func (e *apiError) Error() string { return e.message }

func fail(status int, message, details string) *apiError {
	return &apiError{status: status, message: message, details: details}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, map[string]any{"message": e.message, "details": e.details})
}

func main() {
	var cfg config
	// Portainer's own flags (api/cli/cli.go), so the stand-in is a drop-in for
	// portainer/portainer-ce in a stack definition; then the stand-in's own.
	flag.StringVar(&cfg.dockerHost, "H", "unix:///var/run/docker.sock", "Docker endpoint (Portainer's -H); only unix:// sockets")
	flag.StringVar(&cfg.listen, "bind-https", ":9443", "HTTPS listen address (Portainer's --bind-https)")
	flag.StringVar(&cfg.listenHTTP, "bind", "", "plain HTTP listen address (Portainer's --bind, :9000 there); empty: none")
	flag.StringVar(&cfg.certFile, "sslcert", "", "PEM certificate (chain) to serve, re-read when it changes; unset or missing: an ephemeral self-signed certificate")
	flag.StringVar(&cfg.keyFile, "sslkey", "", "PEM private key of --sslcert")
	flag.StringVar(&cfg.passwordFile, "admin-password-file", "", "file holding the admin password (plain text, trailing newline trimmed), as Portainer's")
	flag.StringVar(&cfg.dataDir, "data", "/data", "state: stacks database and stack files (Portainer's --data)")
	flag.StringVar(&cfg.adminUser, "admin-user", "admin", "stand-in only: the admin user name (Portainer's is admin)")
	flag.StringVar(&cfg.dockerCLI, "docker-cli", "/usr/bin/docker", "stand-in only: docker CLI used for `docker stack deploy`")
	flag.StringVar(&cfg.endpointName, "endpoint-name", "primary", "stand-in only: name of the one environment (endpoint)")
	flag.StringVar(&cfg.resolveImage, "resolve-image", "never", "stand-in only: docker stack deploy --resolve-image (the lab has no registry)")
	flag.DurationVar(&cfg.deployTimeout, "deploy-timeout", 5*time.Minute, "stand-in only: bound on one docker stack deploy")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.LUTC)
	log.SetPrefix("portainer-standin: ")

	if cfg.passwordFile == "" {
		log.Fatal("-admin-password-file is required")
	}
	if !strings.HasPrefix(cfg.dockerHost, "unix://") {
		log.Fatalf("-H %s: the stand-in only talks to a local unix socket", cfg.dockerHost)
	}
	cfg.dockerSocket = strings.TrimPrefix(cfg.dockerHost, "unix://")
	pw, err := os.ReadFile(cfg.passwordFile)
	if err != nil {
		log.Fatalf("reading the admin password file: %v", err)
	}
	pw = bytes.TrimRight(pw, "\r\n")
	if len(pw) == 0 {
		log.Fatalf("admin password file %s is empty", cfg.passwordFile)
	}
	s := &server{cfg: cfg, password: pw, jwtKey: make([]byte, 32)}
	if _, err := rand.Read(s.jwtKey); err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.dataDir, "compose"), 0o700); err != nil {
		log.Fatal(err)
	}
	if err := s.load(); err != nil {
		log.Fatal(err)
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", cfg.dockerSocket)
	}
	transport := &http.Transport{DialContext: dial, MaxIdleConns: 4}
	s.docker = &http.Client{Transport: transport, Timeout: 60 * time.Second}
	s.proxy = &httputil.ReverseProxy{
		Director:  func(r *http.Request) { r.URL.Scheme = "http"; r.URL.Host = "docker" },
		Transport: transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeErr(w, fail(http.StatusBadGateway, "Unable to proxy the request to the Docker environment", err.Error()))
		},
	}

	certs := &certSource{certFile: cfg.certFile, keyFile: cfg.keyFile}
	if _, err := certs.get(nil); err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Addr:              cfg.listen,
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get},
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	log.Printf("phoenix lab stand-in for the Portainer API (NOT Portainer) on %s, endpoint %q -> %s, data %s",
		cfg.listen, cfg.endpointName, cfg.dockerSocket, cfg.dataDir)
	if cfg.listenHTTP != "" {
		plain := &http.Server{Addr: cfg.listenHTTP, Handler: s, ReadHeaderTimeout: 10 * time.Second}
		go func() { log.Fatal(plain.ListenAndServe()) }()
	}
	log.Fatal(srv.ListenAndServeTLS("", ""))
}

// ---------------------------------------------------------------- TLS: files re-read on change

type certSource struct {
	certFile, keyFile string
	mu                sync.Mutex
	cert              *tls.Certificate
	stamp             string
	selfSigned        bool
}

func (c *certSource) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stamp := ""
	if c.certFile != "" {
		a, errA := os.Stat(c.certFile)
		b, errB := os.Stat(c.keyFile)
		if errA == nil && errB == nil {
			stamp = fmt.Sprintf("%d/%d/%d/%d", a.ModTime().UnixNano(), a.Size(), b.ModTime().UnixNano(), b.Size())
		}
	}
	if c.cert != nil && stamp == c.stamp {
		return c.cert, nil
	}
	if stamp != "" {
		cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
		if err == nil {
			c.cert, c.stamp, c.selfSigned = &cert, stamp, false
			log.Printf("serving the certificate %s", c.certFile)
			return c.cert, nil
		}
		log.Printf("cannot load %s / %s: %v", c.certFile, c.keyFile, err)
		if c.cert != nil && !c.selfSigned {
			return c.cert, nil // keep the last good one
		}
	}
	if c.cert == nil {
		cert, err := selfSigned()
		if err != nil {
			return nil, err
		}
		c.cert, c.selfSigned = cert, true
		log.Printf("no certificate at %q yet: serving an ephemeral SELF-SIGNED certificate (clients that verify TLS refuse it)", c.certFile)
	}
	c.stamp = stamp
	return c.cert, nil
}

func selfSigned() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "portainer-standin (self-signed)"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"portainer-standin"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// ---------------------------------------------------------------- persistence

func (s *server) dbPath() string { return filepath.Join(s.cfg.dataDir, "stacks.json") }

// lock: one request at a time in this process, and an exclusive flock on <data>/.lock across
// processes sharing the data directory (a one-off bootstrap instance and the stack's own server
// use the same volume); the database is re-read when another process changed it.
func (s *server) lock() *apiError {
	s.mu.Lock()
	if s.lockFile == nil {
		f, err := os.OpenFile(filepath.Join(s.cfg.dataDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			s.mu.Unlock()
			return fail(http.StatusInternalServerError, "Unable to open the database", err.Error())
		}
		s.lockFile = f
	}
	if err := syscall.Flock(int(s.lockFile.Fd()), syscall.LOCK_EX); err != nil {
		s.mu.Unlock()
		return fail(http.StatusInternalServerError, "Unable to lock the database", err.Error())
	}
	if st := fileStamp(s.dbPath()); st != s.dbStamp {
		if err := s.load(); err != nil {
			s.unlock()
			return fail(http.StatusInternalServerError, "Unable to read the database", err.Error())
		}
	}
	return nil
}

func (s *server) unlock() {
	_ = syscall.Flock(int(s.lockFile.Fd()), syscall.LOCK_UN)
	s.mu.Unlock()
}

func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%d/%d/%d", fi.ModTime().UnixNano(), fi.Size(), ino)
}

func (s *server) load() error {
	s.dbStamp = fileStamp(s.dbPath())
	b, err := os.ReadFile(s.dbPath())
	if errors.Is(err, os.ErrNotExist) {
		s.db = database{NextID: 1, Stacks: []*stack{}}
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &s.db); err != nil {
		return fmt.Errorf("%s: %w", s.dbPath(), err)
	}
	if s.db.NextID < 1 {
		s.db.NextID = 1
	}
	return nil
}

// writeAtomic: temp file in the same directory, fsync, rename.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func (s *server) save() error {
	b, err := json.MarshalIndent(s.db, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(s.dbPath(), b, 0o600); err != nil {
		return err
	}
	s.dbStamp = fileStamp(s.dbPath())
	return nil
}

// ---------------------------------------------------------------- routing

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

var (
	reEndpointDocker = regexp.MustCompile(`^/api/endpoints/(\d+)/docker(/.*)$`)
	reStackFile      = regexp.MustCompile(`^/api/stacks/(\d+)/file$`)
	reStack          = regexp.MustCompile(`^/api/stacks/(\d+)$`)
)

func (s *server) ServeHTTP(w0 http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: w0, status: 200}
	w.Header().Set("X-Phoenix-Standin", "portainer")
	defer func() {
		// Path only: no query (filters are harmless, but ?token= would not be), no body.
		log.Printf("%s %s -> %d (%s)", r.Method, r.URL.Path, w.status, time.Since(start).Round(time.Millisecond))
	}()
	if e := s.route(w, r); e != nil {
		writeErr(w, e)
	}
}

func (s *server) route(w http.ResponseWriter, r *http.Request) *apiError {
	p := r.URL.Path
	switch {
	case p == "/api/system/status" || p == "/api/status":
		if r.Method != http.MethodGet {
			return fail(http.StatusMethodNotAllowed, "Method not allowed", r.Method)
		}
		writeJSON(w, 200, map[string]any{"Version": apiVersion, "InstanceID": instanceID})
		return nil
	case p == "/api/auth":
		if r.Method != http.MethodPost {
			return fail(http.StatusMethodNotAllowed, "Method not allowed", r.Method)
		}
		return s.auth(w, r)
	}
	if !strings.HasPrefix(p, "/api/") {
		return fail(http.StatusNotFound, "portainer-standin: not implemented", "this is a phoenix lab stand-in for the Portainer API, not Portainer")
	}
	if e := s.authorize(r); e != nil {
		return e
	}
	if m := reEndpointDocker.FindStringSubmatch(p); m != nil {
		return s.dockerProxy(w, r, m[1], m[2])
	}
	switch {
	case p == "/api/endpoints" && r.Method == http.MethodGet:
		return s.endpoints(w)
	case p == "/api/stacks" && r.Method == http.MethodGet:
		return s.listStacks(w, r)
	case p == "/api/stacks/create/swarm/string" && r.Method == http.MethodPost:
		return s.createStack(w, r)
	}
	if m := reStackFile.FindStringSubmatch(p); m != nil && r.Method == http.MethodGet {
		return s.stackFile(w, m[1])
	}
	if m := reStack.FindStringSubmatch(p); m != nil && r.Method == http.MethodPut {
		return s.updateStack(w, r, m[1])
	}
	return fail(http.StatusNotFound, "portainer-standin: not implemented",
		fmt.Sprintf("%s %s is not one of the requests phoenix sync makes", r.Method, p))
}

// ---------------------------------------------------------------- auth

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (s *server) sign(data string) string {
	m := hmac.New(sha256.New, s.jwtKey)
	m.Write([]byte(data))
	return b64(m.Sum(nil))
}

func (s *server) auth(w http.ResponseWriter, r *http.Request) *apiError {
	var body struct {
		Username string `json:"Username"`
		Password string `json:"Password"`
	}
	if err := decodeStrict(r, &body); err != nil {
		return fail(http.StatusBadRequest, "Invalid request payload", err.Error())
	}
	if body.Username == "" || body.Password == "" {
		return fail(http.StatusBadRequest, "Invalid request payload", "Invalid username or password")
	}
	userOK := subtle.ConstantTimeCompare([]byte(body.Username), []byte(s.cfg.adminUser)) == 1
	pwOK := subtle.ConstantTimeCompare([]byte(body.Password), s.password) == 1
	if !userOK || !pwOK {
		return fail(http.StatusUnprocessableEntity, "Invalid credentials", "Unauthorized")
	}
	now := time.Now()
	header := b64([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"id": 1, "username": s.cfg.adminUser, "role": 1, "iat": now.Unix(), "exp": now.Add(tokenTTL).Unix()})
	unsigned := header + "." + b64(claims)
	writeJSON(w, 200, map[string]string{"jwt": unsigned + "." + s.sign(unsigned)})
	return nil
}

func (s *server) authorize(r *http.Request) *apiError {
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") {
		return fail(http.StatusUnauthorized, "Unauthorized", "A valid authorisation token is missing")
	}
	parts := strings.Split(strings.TrimPrefix(h, "Bearer "), ".")
	if len(parts) != 3 || !hmac.Equal([]byte(s.sign(parts[0]+"."+parts[1])), []byte(parts[2])) {
		return fail(http.StatusUnauthorized, "Invalid JWT token", "Unauthorized")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err != nil || json.Unmarshal(raw, &claims) != nil || time.Now().Unix() >= claims.Exp {
		return fail(http.StatusUnauthorized, "Invalid JWT token", "Unauthorized")
	}
	return nil
}

// decodeStrict reads a JSON body and refuses unknown fields: the stand-in is also a contract
// check, so a misspelt field name (SwarmId for SwarmID, Name for name in Env) is a 400 here,
// where real Portainer would silently ignore it.
func decodeStrict(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("Content-Type must be application/json, got %q", ct)
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	return nil
}

// ---------------------------------------------------------------- endpoints

const endpointID = 1

func (s *server) endpoint() map[string]any {
	return map[string]any{
		"Id": endpointID, "Name": s.cfg.endpointName, "Type": 1, "URL": s.cfg.dockerHost,
		"PublicURL": "", "GroupId": 1, "Status": 1, "ContainerEngine": "docker",
		"TLSConfig": map[string]any{"TLS": false, "TLSSkipVerify": false},
		"TagIds":    []int{}, "Snapshots": []any{}, "EdgeID": "", "EdgeKey": "", "Heartbeat": false,
		"Agent": map[string]any{"Version": ""}, "Gpus": []any{}, "Kubernetes": map[string]any{},
		"SecuritySettings": map[string]any{},
	}
}

func (s *server) endpoints(w http.ResponseWriter) *apiError {
	w.Header().Set("X-Total-Count", "1")
	w.Header().Set("X-Total-Available", "1")
	writeJSON(w, 200, []any{s.endpoint()})
	return nil
}

func (s *server) endpointParam(r *http.Request) (int, *apiError) {
	v := r.URL.Query().Get("endpointId")
	id, err := strconv.Atoi(v)
	if v == "" || err != nil {
		return 0, fail(http.StatusBadRequest, "Invalid query parameter: endpointId", "")
	}
	if id != endpointID {
		return 0, fail(http.StatusNotFound, "Unable to find an environment with the specified identifier inside the database", "")
	}
	return id, nil
}

// dockerProxy forwards to the Engine API with the /api/endpoints/{id}/docker prefix stripped,
// as Portainer does. Only what sync uses: reads, and creating a swarm secret.
func (s *server) dockerProxy(w http.ResponseWriter, r *http.Request, id, rest string) *apiError {
	if n, _ := strconv.Atoi(id); n != endpointID {
		return fail(http.StatusNotFound, "Unable to find an environment with the specified identifier inside the database", "")
	}
	allowed := r.Method == http.MethodGet || (r.Method == http.MethodPost && rest == "/secrets/create")
	if !allowed {
		return fail(http.StatusNotFound, "portainer-standin: not implemented",
			fmt.Sprintf("docker proxy: %s %s is not one of the requests phoenix sync makes", r.Method, rest))
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = rest
	r2.URL.RawPath = ""
	r2.Header.Del("Authorization")
	r2.RequestURI = ""
	s.proxy.ServeHTTP(w, r2)
	return nil
}

// ---------------------------------------------------------------- stacks

var nonName = regexp.MustCompile(`[^-_a-z0-9]+`)

func normalizeName(n string) string { return nonName.ReplaceAllString(strings.ToLower(n), "") }

func (s *server) find(id string) (*stack, *apiError) {
	n, err := strconv.Atoi(id)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "Invalid stack identifier route variable", err.Error())
	}
	for _, st := range s.db.Stacks {
		if st.ID == n {
			return st, nil
		}
	}
	return nil, fail(http.StatusNotFound, "Unable to find a stack with the specified identifier inside the database", "")
}

func (s *server) listStacks(w http.ResponseWriter, r *http.Request) *apiError {
	var f struct {
		SwarmID               string `json:"SwarmID"`
		EndpointID            int    `json:"EndpointID"`
		IncludeOrphanedStacks bool   `json:"IncludeOrphanedStacks"`
	}
	if raw := r.URL.Query().Get("filters"); raw != "" {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return fail(http.StatusBadRequest, "Invalid query parameter: filters", err.Error())
		}
	}
	if e := s.lock(); e != nil {
		return e
	}
	defer s.unlock()
	out := []*stack{}
	for _, st := range s.db.Stacks {
		if f.SwarmID != "" && st.SwarmID != f.SwarmID {
			continue
		}
		if f.EndpointID != 0 && st.EndpointID != f.EndpointID {
			continue
		}
		out = append(out, st)
	}
	writeJSON(w, 200, out)
	return nil
}

func (s *server) stackFile(w http.ResponseWriter, id string) *apiError {
	if e := s.lock(); e != nil {
		return e
	}
	defer s.unlock()
	st, e := s.find(id)
	if e != nil {
		return e
	}
	b, err := os.ReadFile(filepath.Join(st.ProjectPath, st.EntryPoint))
	if err != nil {
		return fail(http.StatusInternalServerError, "Unable to retrieve Compose file from disk", err.Error())
	}
	writeJSON(w, 200, map[string]string{"StackFileContent": string(b)})
	return nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkEnv(env []pair) *apiError {
	seen := map[string]bool{}
	for i, p := range env {
		if !envName.MatchString(p.Name) {
			return fail(http.StatusBadRequest, "Invalid request payload", fmt.Sprintf("Env[%d].name: %q is not a variable name", i, p.Name))
		}
		if seen[p.Name] {
			return fail(http.StatusBadRequest, "Invalid request payload", fmt.Sprintf("Env[%d].name: %q given twice", i, p.Name))
		}
		seen[p.Name] = true
	}
	return nil
}

func (s *server) createStack(w http.ResponseWriter, r *http.Request) *apiError {
	eid, e := s.endpointParam(r)
	if e != nil {
		return e
	}
	var body struct {
		Name             string `json:"Name"`
		SwarmID          string `json:"SwarmID"`
		StackFileContent string `json:"StackFileContent"`
		Env              []pair `json:"Env"`
		FromAppTemplate  bool   `json:"FromAppTemplate"`
	}
	if err := decodeStrict(r, &body); err != nil {
		return fail(http.StatusBadRequest, "Invalid request payload", err.Error())
	}
	switch {
	case body.Name == "":
		return fail(http.StatusBadRequest, "Invalid request payload", "Invalid stack name")
	case body.SwarmID == "":
		return fail(http.StatusBadRequest, "Invalid request payload", "Invalid Swarm ID")
	case body.StackFileContent == "":
		return fail(http.StatusBadRequest, "Invalid request payload", "Invalid stack file content")
	}
	if e := checkEnv(body.Env); e != nil {
		return e
	}
	name := normalizeName(body.Name)
	if e := s.lock(); e != nil {
		return e
	}
	defer s.unlock()
	for _, st := range s.db.Stacks {
		if st.Name == name && st.EndpointID == eid && st.SwarmID == body.SwarmID {
			return fail(http.StatusConflict, fmt.Sprintf("A stack with the normalized name '%s' already exists", name), "")
		}
	}
	exists, err := s.stackInDocker(r.Context(), name)
	if err != nil {
		return fail(http.StatusInternalServerError, "Unable to check the stack name against the Docker environment", err.Error())
	}
	if exists {
		return fail(http.StatusConflict, fmt.Sprintf("A stack with the normalized name '%s' already exists", name), "")
	}
	id := s.db.NextID
	st := &stack{
		ID: id, Name: name, Type: 1, EndpointID: eid, SwarmID: body.SwarmID, EntryPoint: "docker-compose.yml",
		Env: nonNil(body.Env), Status: 1, ProjectPath: filepath.Join(s.cfg.dataDir, "compose", strconv.Itoa(id)),
		CreationDate: time.Now().Unix(), CreatedBy: s.cfg.adminUser, AdditionalFiles: []string{},
		FromAppTemplate: body.FromAppTemplate,
		ResourceControl: &resourceControl{ID: id, ResourceID: fmt.Sprintf("%d_%s", eid, name), Type: 6,
			SubResourceIDs: []string{}, UserAccesses: []any{}, TeamAccesses: []any{}, AdministratorsOnly: true},
	}
	if err := os.MkdirAll(st.ProjectPath, 0o700); err != nil {
		return fail(http.StatusInternalServerError, "Unable to persist the Compose file on disk", err.Error())
	}
	if err := writeAtomic(filepath.Join(st.ProjectPath, st.EntryPoint), []byte(body.StackFileContent), 0o600); err != nil {
		return fail(http.StatusInternalServerError, "Unable to persist the Compose file on disk", err.Error())
	}
	if out, err := s.deploy(st, false); err != nil {
		os.RemoveAll(st.ProjectPath)
		return fail(http.StatusInternalServerError, "Failed to deploy a new stack", out)
	}
	s.db.NextID++
	s.db.Stacks = append(s.db.Stacks, st)
	if err := s.save(); err != nil {
		return fail(http.StatusInternalServerError, "Unable to persist the stack inside the database", err.Error())
	}
	writeJSON(w, 200, st)
	return nil
}

func (s *server) updateStack(w http.ResponseWriter, r *http.Request, id string) *apiError {
	eid, e := s.endpointParam(r)
	if e != nil {
		return e
	}
	var body struct {
		StackFileContent string `json:"StackFileContent"`
		Env              []pair `json:"Env"`
		Prune            bool   `json:"Prune"`
		// 2.36+: RepullImageAndRedeploy; PullImage is "Deprecated(2.36): use RepullImageAndRedeploy
		// instead" and still accepted. The stand-in never pulls (no registry): both are ignored.
		RepullImageAndRedeploy bool `json:"RepullImageAndRedeploy"`
		PullImage              bool `json:"PullImage"`
	}
	if err := decodeStrict(r, &body); err != nil {
		return fail(http.StatusBadRequest, "Invalid request payload", err.Error())
	}
	if body.StackFileContent == "" {
		return fail(http.StatusBadRequest, "Invalid request payload", "Invalid stack file content")
	}
	if e := checkEnv(body.Env); e != nil {
		return e
	}
	if e := s.lock(); e != nil {
		return e
	}
	defer s.unlock()
	st, e := s.find(id)
	if e != nil {
		return e
	}
	file := filepath.Join(st.ProjectPath, st.EntryPoint)
	old, _ := os.ReadFile(file)
	oldEnv := st.Env
	if err := writeAtomic(file, []byte(body.StackFileContent), 0o600); err != nil {
		return fail(http.StatusInternalServerError, "Unable to persist updated Compose file on disk", err.Error())
	}
	st.Env = nonNil(body.Env)
	if out, err := s.deploy(st, body.Prune); err != nil {
		// Keep the last good file and Env, as Portainer's rollback of a failed update does.
		_ = writeAtomic(file, old, 0o600)
		st.Env = oldEnv
		return fail(http.StatusInternalServerError, "Failed to deploy the stack", out)
	}
	st.EndpointID = eid
	st.UpdateDate = time.Now().Unix()
	st.UpdatedBy = s.cfg.adminUser
	if err := s.save(); err != nil {
		return fail(http.StatusInternalServerError, "Unable to persist the stack changes inside the database", err.Error())
	}
	writeJSON(w, 200, st)
	return nil
}

func nonNil(p []pair) []pair {
	if p == nil {
		return []pair{}
	}
	return p
}

// stackInDocker: does the swarm have services of a stack with this name (deployed by anyone)?
func (s *server) stackInDocker(ctx context.Context, name string) (bool, error) {
	f, _ := json.Marshal(map[string][]string{"label": {"com.docker.stack.namespace=" + name}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/services?filters="+url.QueryEscape(string(f)), nil)
	resp, err := s.docker.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return false, fmt.Errorf("docker GET /services: %d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var svcs []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&svcs); err != nil {
		return false, err
	}
	return len(svcs) > 0, nil
}

// deploy runs `docker stack deploy` like Portainer's swarm stack manager: the stack's Env is the
// process environment (compose variable interpolation), never arguments.
func (s *server) deploy(st *stack, prune bool) (string, error) {
	args := []string{"stack", "deploy", "--with-registry-auth", "--compose-file", filepath.Join(st.ProjectPath, st.EntryPoint)}
	if s.cfg.resolveImage != "" {
		args = append(args, "--resolve-image", s.cfg.resolveImage)
	}
	if prune {
		args = append(args, "--prune")
	}
	args = append(args, st.Name)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.deployTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.cfg.dockerCLI, args...)
	cmd.Dir = st.ProjectPath
	cfgDir := filepath.Join(s.cfg.dataDir, "docker-config")
	_ = os.MkdirAll(cfgDir, 0o700)
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + s.cfg.dataDir, "DOCKER_CONFIG=" + cfgDir, "DOCKER_HOST=unix://" + s.cfg.dockerSocket}
	names := make([]string, 0, len(st.Env))
	for _, p := range st.Env {
		env = append(env, p.Name+"="+p.Value)
		names = append(names, p.Name)
	}
	sort.Strings(names)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := strings.TrimSpace(out.String())
	// Env values may be secrets: never echo them back, even inside docker's own output.
	for _, p := range st.Env {
		if len(p.Value) >= 4 {
			text = strings.ReplaceAll(text, p.Value, "********")
		}
	}
	if err != nil {
		log.Printf("docker stack deploy %s (env: %s) failed: %v: %s", st.Name, strings.Join(names, ","), err, text)
		return fmt.Sprintf("docker stack deploy %s: %v: %s", st.Name, err, text), err
	}
	log.Printf("docker stack deploy %s (env: %s, prune: %v): ok", st.Name, strings.Join(names, ","), prune)
	return text, nil
}
