// traefik-standin: the phoenix lab's stand-in for Traefik v3 (real Traefik cannot be obtained
// in the lab). It is NOT Traefik. It is installed where the role installs Traefik
// (/usr/local/bin/traefik), started by the same systemd unit, and reads the SAME files the
// role rendered: the static config given by --configFile, and the file provider's directory
// of dynamic config (watched: a change is picked up without a restart, as Traefik does).
//
// What it does, as Traefik would:
//   - listens on every entrypoint; on each connection, TLS or plain HTTP (first byte);
//   - TLS with the certificates of tls.certificates (chosen by SNI; the default store's
//     defaultCertificate otherwise), minimum version from tls.options.default;
//   - answers /ping on the ping entrypoint ("OK");
//   - routes by rule (Host, HostRegexp, Path, PathPrefix, PathRegexp, Method, Header,
//     HeaderRegexp, Query, QueryRegexp, ClientIP; &&, ||, !, parentheses), highest priority
//     first (default: the rule's length); TLS routers only on TLS connections, others only on
//     plain ones; the entrypoint redirect (http.redirections.entryPoint) as a router of its own;
//   - middlewares ipAllowList, redirectScheme, headers (others: 500, named);
//   - proxies to loadBalancer servers (http or https; https verified against the system
//     trust store, as Traefik does by default), passing the Host header unless told not to.
//
//   - the swarm provider (providers.swarm): polls Docker's API at `endpoint` every
//     `refreshSeconds` with the configured TLS (CA, client certificate and key), reads the
//     services' traefik.* labels (exposedByDefault, traefik.enable, routers' rule, entryPoints,
//     service, priority, tls; services' loadbalancer.server.port/scheme) and routes to the
//     running tasks' addresses on `network` (or traefik.swarm.network), as Traefik does; what it
//     found (and its last error) is part of the api@internal answer.
//
// Every response carries "X-Phoenix-Standin: traefik-standin". Unsupported static settings
// are logged and ignored.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"
)

const name = "traefik-standin"
const version = "3.0.0-phoenix-standin"

// ------------------------------------------------------------------ config shapes

type redirect struct {
	To        string `yaml:"to"`
	Scheme    string `yaml:"scheme"`
	Permanent *bool  `yaml:"permanent"`
	Priority  *int   `yaml:"priority"`
}

type staticConfig struct {
	EntryPoints map[string]struct {
		Address string `yaml:"address"`
		HTTP    struct {
			Redirections struct {
				EntryPoint *redirect `yaml:"entryPoint"`
			} `yaml:"redirections"`
		} `yaml:"http"`
	} `yaml:"entryPoints"`
	Ping *struct {
		EntryPoint string `yaml:"entryPoint"`
	} `yaml:"ping"`
	API       *struct{}            `yaml:"api"`
	Providers map[string]yaml.Node `yaml:"providers"`
	Log       struct {
		Level string `yaml:"level"`
	} `yaml:"log"`
}

type router struct {
	Rule        string    `yaml:"rule"`
	EntryPoints []string  `yaml:"entryPoints"`
	Service     string    `yaml:"service"`
	Priority    int       `yaml:"priority"`
	Middlewares []string  `yaml:"middlewares"`
	TLS         *struct{} `yaml:"tls"`
}

type server struct {
	URL string `yaml:"url"`
}

type loadBalancer struct {
	Servers        []server `yaml:"servers"`
	PassHostHeader *bool    `yaml:"passHostHeader"`
}

type service struct {
	LoadBalancer *loadBalancer `yaml:"loadBalancer"`
}

type middleware struct {
	IPAllowList *struct {
		SourceRange []string `yaml:"sourceRange"`
	} `yaml:"ipAllowList"`
	RedirectScheme *struct {
		Scheme    string `yaml:"scheme"`
		Permanent bool   `yaml:"permanent"`
		Port      string `yaml:"port"`
	} `yaml:"redirectScheme"`
	Headers *struct {
		CustomRequestHeaders  map[string]string `yaml:"customRequestHeaders"`
		CustomResponseHeaders map[string]string `yaml:"customResponseHeaders"`
	} `yaml:"headers"`
	other []string
}

type certFiles struct {
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

type dynamicFile struct {
	HTTP struct {
		Routers     map[string]router    `yaml:"routers"`
		Services    map[string]service   `yaml:"services"`
		Middlewares map[string]yaml.Node `yaml:"middlewares"`
	} `yaml:"http"`
	TLS struct {
		Certificates []certFiles `yaml:"certificates"`
		Options      map[string]struct {
			MinVersion string `yaml:"minVersion"`
		} `yaml:"options"`
		Stores map[string]struct {
			DefaultCertificate *certFiles `yaml:"defaultCertificate"`
		} `yaml:"stores"`
	} `yaml:"tls"`
}

// ------------------------------------------------------------------ the live state

type liveRouter struct {
	name     string
	rule     node
	eps      []string
	service  string
	priority int
	mws      []string
	tls      bool
	redirect *redirect // an entrypoint redirect router
}

type state struct {
	routers     []*liveRouter
	services    map[string]service
	middlewares map[string]middleware
	certs       []tls.Certificate
	defCert     *tls.Certificate
	minVersion  uint16
}

var (
	static    staticConfig
	pingEP    string
	dynDir    string
	dynFile   string
	current   atomic.Value // *state
	transport = http.DefaultTransport.(*http.Transport).Clone()
)

func logf(format string, a ...interface{}) { log.Printf(name+": "+format, a...) }

func main() {
	log.SetFlags(0)
	cfg := ""
	for _, a := range os.Args[1:] {
		switch {
		case a == "version" || a == "--version":
			fmt.Printf("Version:      %s\nCodename:     %s (phoenix lab stand-in, NOT Traefik)\n", version, name)
			return
		case strings.HasPrefix(strings.ToLower(a), "--configfile="):
			cfg = a[len("--configfile="):]
		case a == "healthcheck":
			os.Exit(healthcheck(cfg))
		default:
			logf("ignoring argument %q", a)
		}
	}
	if cfg == "" {
		cfg = "/etc/traefik/traefik.yml"
	}
	if err := loadStatic(cfg); err != nil {
		logf("%v", err)
		os.Exit(1)
	}
	st, sig, err := loadDynamic()
	if err != nil {
		logf("dynamic config: %v", err) // Traefik keeps running with what it has
		st = &state{services: map[string]service{}, middlewares: map[string]middleware{}}
	}
	fileState.Store(st)
	publish()
	if swarmCfg != nil {
		go swarmLoop(*swarmCfg)
	}
	logf("started (stand-in for Traefik v3): static config %s, dynamic %s%s", cfg, dynDir, dynFile)
	// As Traefik: an entrypoint that cannot listen is logged, the others keep serving.
	for epName, ep := range static.EntryPoints {
		go func(epName, addr string) { logf("error: %v", serve(epName, addr)) }(epName, ep.Address)
	}
	watch(sig)
}

func healthcheck(cfg string) int {
	if cfg == "" {
		cfg = "/etc/traefik/traefik.yml"
	}
	if err := loadStatic(cfg); err != nil {
		return 1
	}
	ep, ok := static.EntryPoints[pingEP]
	if !ok {
		return 1
	}
	_, port, _ := net.SplitHostPort(ep.Address)
	r, err := http.Get("http://127.0.0.1:" + port + "/ping")
	if err != nil || r.StatusCode != 200 {
		return 1
	}
	fmt.Println("OK: http://127.0.0.1:" + port + "/ping")
	return 0
}

func loadStatic(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("static config: %v", err)
	}
	if err := yaml.Unmarshal(b, &static); err != nil {
		return fmt.Errorf("static config %s: %v", path, err)
	}
	if len(static.EntryPoints) == 0 {
		return fmt.Errorf("static config %s: no entryPoints", path)
	}
	if static.Ping != nil {
		pingEP = static.Ping.EntryPoint
		if pingEP == "" {
			pingEP = "traefik"
		}
	}
	for p, n := range static.Providers {
		switch p {
		case "file":
			var f struct {
				Directory string `yaml:"directory"`
				Filename  string `yaml:"filename"`
			}
			if err := n.Decode(&f); err != nil {
				return fmt.Errorf("providers.file: %v", err)
			}
			dynDir, dynFile = f.Directory, f.Filename
		case "swarm":
			var sp swarmProvider
			if err := n.Decode(&sp); err != nil {
				return fmt.Errorf("providers.swarm: %v", err)
			}
			swarmCfg = &sp
		default:
			logf("provider %q is not supported by the stand-in: ignored", p)
		}
	}
	return nil
}

// ------------------------------------------------------------------ dynamic config

func dynamicFiles() ([]string, error) {
	if dynFile != "" {
		return []string{dynFile}, nil
	}
	if dynDir == "" {
		return nil, nil
	}
	ents, err := os.ReadDir(dynDir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() && !strings.HasPrefix(n, ".") && (strings.HasSuffix(n, ".yml") || strings.HasSuffix(n, ".yaml")) {
			out = append(out, filepath.Join(dynDir, n))
		}
	}
	sort.Strings(out)
	return out, nil
}

// loadDynamic reads every dynamic file and the certificates they list; also returns the files' signature.
func loadDynamic() (*state, string, error) {
	files, err := dynamicFiles()
	if err != nil {
		return nil, "", err
	}
	st := &state{services: map[string]service{}, middlewares: map[string]middleware{}, minVersion: tls.VersionTLS12}
	raw := map[string]router{}
	var sig strings.Builder
	var certList []certFiles
	var def *certFiles
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			continue
		}
		fmt.Fprintf(&sig, "%s %d %d\n", f, fi.Size(), fi.ModTime().UnixNano())
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, sig.String(), err
		}
		var d dynamicFile
		if err := yaml.Unmarshal(b, &d); err != nil {
			return nil, sig.String(), fmt.Errorf("%s: %v", f, err)
		}
		for k, v := range d.HTTP.Routers {
			if _, dup := raw[k]; dup {
				logf("router %q defined twice (%s): skipped", k, f)
				continue
			}
			raw[k] = v
		}
		for k, v := range d.HTTP.Services {
			st.services[k] = v
		}
		for k, n := range d.HTTP.Middlewares {
			var m middleware
			if err := n.Decode(&m); err != nil {
				return nil, sig.String(), fmt.Errorf("%s: middleware %s: %v", f, k, err)
			}
			var kinds map[string]yaml.Node
			_ = n.Decode(&kinds)
			for kind := range kinds {
				if kind != "ipAllowList" && kind != "redirectScheme" && kind != "headers" {
					m.other = append(m.other, kind)
				}
			}
			st.middlewares[k] = m
		}
		certList = append(certList, d.TLS.Certificates...)
		if o, ok := d.TLS.Options["default"]; ok && o.MinVersion == "VersionTLS13" {
			st.minVersion = tls.VersionTLS13
		}
		if s, ok := d.TLS.Stores["default"]; ok && s.DefaultCertificate != nil {
			def = s.DefaultCertificate
		}
	}
	for _, c := range certList {
		kp, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			logf("tls certificate %s: %v (skipped)", c.CertFile, err)
			continue
		}
		kp.Leaf, _ = x509.ParseCertificate(kp.Certificate[0])
		st.certs = append(st.certs, kp)
	}
	if def != nil {
		if kp, err := tls.LoadX509KeyPair(def.CertFile, def.KeyFile); err == nil {
			kp.Leaf, _ = x509.ParseCertificate(kp.Certificate[0])
			st.defCert = &kp
		} else {
			logf("default certificate %s: %v", def.CertFile, err)
		}
	}
	for k, r := range raw {
		tree, err := parseRule(r.Rule)
		if err != nil {
			logf("router %q: rule %q: %v (router skipped, as Traefik does)", k, r.Rule, err)
			continue
		}
		p := r.Priority
		if p == 0 {
			p = len(r.Rule)
		}
		st.routers = append(st.routers, &liveRouter{name: k + "@file", rule: tree, eps: r.EntryPoints, service: r.Service, priority: p, mws: r.Middlewares, tls: r.TLS != nil})
	}
	return st, sig.String(), nil
}

// withInternal adds what Traefik generates itself: the entrypoint redirects and /ping.
func withInternal(st *state) *state {
	for epName, ep := range static.EntryPoints {
		if r := ep.HTTP.Redirections.EntryPoint; r != nil {
			p := math.MaxInt32 - 1
			if r.Priority != nil {
				p = *r.Priority
			}
			tree, _ := parseRule("HostRegexp(`^.+$`)")
			st.routers = append(st.routers, &liveRouter{name: epName + "-to-" + r.To + "@internal", rule: tree, eps: []string{epName}, priority: p, redirect: r})
		}
	}
	if pingEP != "" {
		tree, _ := parseRule("PathPrefix(`/ping`)")
		st.routers = append(st.routers, &liveRouter{name: "ping@internal", rule: tree, eps: []string{pingEP}, service: "ping@internal", priority: math.MaxInt32})
	}
	sort.SliceStable(st.routers, func(i, j int) bool {
		if st.routers[i].priority != st.routers[j].priority {
			return st.routers[i].priority > st.routers[j].priority
		}
		return st.routers[i].name < st.routers[j].name
	})
	return st
}

func watch(sig string) {
	for {
		time.Sleep(300 * time.Millisecond) // the file provider's watch, by polling
		now, err := loadDynamicSig()
		if err != nil || now == sig {
			continue
		}
		st, s2, err := loadDynamic()
		if err != nil {
			logf("dynamic config reload: %v (keeping the previous one)", err)
			sig = now
			continue
		}
		sig = s2
		fileState.Store(st)
		publish()
		logf("dynamic config reloaded: %d routers", len(st.routers))
	}
}

// loadDynamicSig: names, sizes and mtimes of the dynamic files. Like Traefik's file provider,
// only a change to these reloads (and re-reads the certificates they list): certificate files
// changing alone do not, which is why certbot's deploy hook touches the TLS file.
func loadDynamicSig() (string, error) {
	files, err := dynamicFiles()
	if err != nil {
		return "", err
	}
	var sig strings.Builder
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&sig, "%s %d %d\n", f, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return sig.String(), nil
}

// ------------------------------------------------------------------ serving

type peekConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// muxListener hands the HTTP server plain and TLS connections alike (Traefik serves both on one entrypoint).
type muxListener struct {
	net.Listener
	conns chan net.Conn
}

func (l *muxListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, errors.New("listener closed")
	}
	return c, nil
}

func serve(epName, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("entrypoint %s (%s): %v", epName, addr, err)
	}
	tlsCfg := &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			st := current.Load().(*state)
			return &tls.Config{MinVersion: st.minVersion, GetCertificate: getCert, NextProtos: []string{"http/1.1"}}, nil
		},
	}
	ml := &muxListener{Listener: ln, conns: make(chan net.Conn)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(ml.conns)
				return
			}
			go func(c net.Conn) {
				br := bufio.NewReader(c)
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				first, err := br.Peek(1)
				_ = c.SetReadDeadline(time.Time{})
				if err != nil {
					c.Close()
					return
				}
				pc := &peekConn{Conn: c, r: br}
				if first[0] == 0x16 {
					ml.conns <- tls.Server(pc, tlsCfg)
				} else {
					ml.conns <- pc
				}
			}(c)
		}
	}()
	srv := &http.Server{Handler: handler(epName), ReadHeaderTimeout: 30 * time.Second, ErrorLog: log.New(os.Stderr, name+": "+epName+": ", 0)}
	logf("entrypoint %s listening on %s (TLS and plain HTTP)", epName, addr)
	return srv.Serve(ml)
}

func getCert(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	st := current.Load().(*state)
	sni := strings.ToLower(strings.TrimSuffix(h.ServerName, "."))
	if sni != "" {
		for i := range st.certs {
			if st.certs[i].Leaf != nil && st.certs[i].Leaf.VerifyHostname(sni) == nil {
				return &st.certs[i], nil
			}
		}
	}
	if st.defCert != nil {
		return st.defCert, nil
	}
	if len(st.certs) > 0 {
		return &st.certs[0], nil
	}
	return nil, fmt.Errorf("no certificate for %q (tls.certificates is empty)", sni)
}

func handler(epName string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("X-Phoenix-Standin", name)
		st := current.Load().(*state)
		isTLS := req.TLS != nil
		for _, r := range st.routers {
			if !onEntryPoint(r, epName) || (r.redirect == nil && r.service != "ping@internal" && r.tls != isTLS) {
				continue
			}
			if !eval(r.rule, req) {
				continue
			}
			if r.redirect != nil {
				redirectTo(w, req, r.redirect)
				return
			}
			serveRouter(st, r, w, req)
			return
		}
		http.Error(w, "404 page not found", http.StatusNotFound)
	})
}

func onEntryPoint(r *liveRouter, ep string) bool {
	if len(r.eps) == 0 {
		return true
	}
	for _, e := range r.eps {
		if e == ep {
			return true
		}
	}
	return false
}

func redirectTo(w http.ResponseWriter, req *http.Request, r *redirect) {
	port := ""
	if ep, ok := static.EntryPoints[r.To]; ok {
		_, port, _ = net.SplitHostPort(ep.Address)
	}
	scheme := r.Scheme
	if scheme == "" {
		scheme = "https"
	}
	host := hostOnly(req.Host)
	if port != "" && !((scheme == "https" && port == "443") || (scheme == "http" && port == "80")) {
		host = net.JoinHostPort(host, port)
	}
	code := http.StatusFound
	if r.Permanent == nil || *r.Permanent {
		code = http.StatusMovedPermanently
	}
	http.Redirect(w, req, scheme+"://"+host+req.URL.RequestURI(), code)
}

func serveRouter(st *state, r *liveRouter, w http.ResponseWriter, req *http.Request) {
	for _, mn := range r.mws {
		m, ok := st.middlewares[strings.TrimSuffix(mn, "@file")]
		if !ok {
			http.Error(w, "traefik-standin: middleware "+mn+" not found", http.StatusInternalServerError)
			return
		}
		if len(m.other) > 0 {
			http.Error(w, "traefik-standin: middleware kind "+strings.Join(m.other, ",")+" is not implemented by the stand-in", http.StatusInternalServerError)
			return
		}
		if m.IPAllowList != nil && !ipAllowed(req, m.IPAllowList.SourceRange) {
			http.Error(w, "Forbidden", http.StatusForbidden)
			return
		}
		if m.RedirectScheme != nil {
			host := hostOnly(req.Host)
			if m.RedirectScheme.Port != "" {
				host = net.JoinHostPort(host, m.RedirectScheme.Port)
			}
			code := http.StatusFound
			if m.RedirectScheme.Permanent {
				code = http.StatusMovedPermanently
			}
			http.Redirect(w, req, m.RedirectScheme.Scheme+"://"+host+req.URL.RequestURI(), code)
			return
		}
		if m.Headers != nil {
			for k, v := range m.Headers.CustomRequestHeaders {
				req.Header.Set(k, v)
			}
			for k, v := range m.Headers.CustomResponseHeaders {
				w.Header().Set(k, v)
			}
		}
	}
	switch r.service {
	case "ping@internal":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "OK")
		return
	case "api@internal", "dashboard@internal":
		w.Header().Set("Content-Type", "application/json")
		routers := []map[string]interface{}{}
		for _, x := range st.routers {
			routers = append(routers, map[string]interface{}{"name": x.name, "service": x.service, "entryPoints": x.eps, "priority": x.priority, "tls": x.tls})
		}
		services := map[string][]string{}
		for k, v := range st.services {
			if v.LoadBalancer != nil {
				for _, sv := range v.LoadBalancer.Servers {
					services[k] = append(services[k], sv.URL)
				}
			}
		}
		out := map[string]interface{}{"standin": true, "title": name, "version": version, "routers": routers, "services": services}
		if swarmCfg != nil {
			swarmMu.Lock()
			out["swarm"] = swarmStat
			swarmMu.Unlock()
		}
		_ = json.NewEncoder(w).Encode(out)
		return
	case "noop@internal":
		w.WriteHeader(http.StatusTeapot)
		return
	}
	svc, ok := st.services[strings.TrimSuffix(r.service, "@file")] // swarm services are keyed "name@swarm"
	if !ok || svc.LoadBalancer == nil || len(svc.LoadBalancer.Servers) == 0 {
		http.Error(w, "traefik-standin: service "+r.service+" not found", http.StatusServiceUnavailable)
		return
	}
	servers := svc.LoadBalancer.Servers
	target, err := url.Parse(servers[int(time.Now().UnixNano())%len(servers)].URL)
	if err != nil {
		http.Error(w, "Bad Gateway", http.StatusBadGateway)
		return
	}
	pass := svc.LoadBalancer.PassHostHeader == nil || *svc.LoadBalancer.PassHostHeader
	proto := "http"
	if req.TLS != nil {
		proto = "https"
	}
	origHost := req.Host
	rp := &httputil.ReverseProxy{
		Director: func(out *http.Request) {
			out.URL.Scheme = target.Scheme
			out.URL.Host = target.Host
			if !pass {
				out.Host = target.Host
			}
			out.Header.Set("X-Forwarded-Proto", proto)
			out.Header.Set("X-Forwarded-Host", origHost)
			out.Header.Set("X-Forwarded-Server", name)
		},
		Transport: transport, // system trust store; certificate and name verified
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			logf("router %s -> %s: %v", r.name, target, err)
			http.Error(w, "Bad Gateway", http.StatusBadGateway)
		},
	}
	rp.ServeHTTP(w, req)
}

func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

func ipAllowed(req *http.Request, ranges []string) bool {
	ip, err := netip.ParseAddr(hostOnly(req.RemoteAddr))
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, s := range ranges {
		if p, err := netip.ParsePrefix(s); err == nil && p.Contains(ip) {
			return true
		}
		if a, err := netip.ParseAddr(s); err == nil && a == ip {
			return true
		}
	}
	return false
}

// ------------------------------------------------------------------ rules (Traefik v3 syntax)

type node struct {
	op    string // "and", "or", "not", "m"
	l, r  *node
	name  string
	args  []string
	re    *regexp.Regexp
	cidrs []netip.Prefix
}

type tok struct{ t, v string }

func lex(s string) ([]tok, error) {
	var out []tok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == ',' || c == '!':
			out = append(out, tok{string(c), string(c)})
			i++
		case (c == '&' || c == '|') && i+1 < len(s) && s[i+1] == c:
			out = append(out, tok{string([]byte{c, c}), ""})
			i += 2
		case c == '`':
			j := strings.IndexByte(s[i+1:], '`')
			if j < 0 {
				return nil, errors.New("unterminated string")
			}
			out = append(out, tok{"str", s[i+1 : i+1+j]})
			i += j + 2
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, errors.New("unterminated string")
			}
			out = append(out, tok{"str", b.String()})
			i = j + 1
		case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			j := i
			for j < len(s) && (s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9' || s[j] == '_') {
				j++
			}
			out = append(out, tok{"id", s[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q", c)
		}
	}
	return append(out, tok{"end", ""}), nil
}

var arity = map[string]int{"Host": 1, "HostRegexp": 1, "Path": 1, "PathPrefix": 1, "PathRegexp": 1, "Method": 1, "Header": 2, "HeaderRegexp": 2, "Query": 2, "QueryRegexp": 2, "ClientIP": 1}

func parseRule(s string) (node, error) {
	toks, err := lex(s)
	if err != nil {
		return node{}, err
	}
	p := 0
	var or, and, unary func() (*node, error)
	or = func() (*node, error) {
		l, err := and()
		for err == nil && toks[p].t == "||" {
			p++
			var r *node
			if r, err = and(); err == nil {
				l = &node{op: "or", l: l, r: r}
			}
		}
		return l, err
	}
	and = func() (*node, error) {
		l, err := unary()
		for err == nil && toks[p].t == "&&" {
			p++
			var r *node
			if r, err = unary(); err == nil {
				l = &node{op: "and", l: l, r: r}
			}
		}
		return l, err
	}
	unary = func() (*node, error) {
		switch toks[p].t {
		case "!":
			p++
			e, err := unary()
			return &node{op: "not", l: e}, err
		case "(":
			p++
			e, err := or()
			if err == nil && toks[p].t != ")" {
				err = errors.New("missing )")
			}
			p++
			return e, err
		case "id":
			n := &node{op: "m", name: toks[p].v}
			want, ok := arity[n.name]
			if !ok {
				return nil, fmt.Errorf("unknown matcher %s", n.name)
			}
			p++
			if toks[p].t != "(" {
				return nil, errors.New("expected (")
			}
			p++
			for toks[p].t == "str" {
				n.args = append(n.args, toks[p].v)
				p++
				if toks[p].t != "," {
					break
				}
				p++
			}
			if toks[p].t != ")" {
				return nil, errors.New("expected )")
			}
			p++
			if len(n.args) != want {
				return nil, fmt.Errorf("%s takes %d arguments", n.name, want)
			}
			if strings.HasSuffix(n.name, "Regexp") {
				re, err := regexp.Compile(n.args[len(n.args)-1])
				if err != nil {
					return nil, err
				}
				n.re = re
			}
			if n.name == "ClientIP" {
				pfx, err := netip.ParsePrefix(n.args[0])
				if err != nil {
					a, err2 := netip.ParseAddr(n.args[0])
					if err2 != nil {
						return nil, err
					}
					pfx = netip.PrefixFrom(a, a.BitLen())
				}
				n.cidrs = []netip.Prefix{pfx}
			}
			return n, nil
		}
		return nil, fmt.Errorf("unexpected %q", toks[p].v)
	}
	tree, err := or()
	if err == nil && toks[p].t != "end" {
		err = fmt.Errorf("unexpected %q", toks[p].v)
	}
	if err != nil {
		return node{}, err
	}
	return *tree, nil
}

func eval(n node, req *http.Request) bool {
	switch n.op {
	case "and":
		return eval(*n.l, req) && eval(*n.r, req)
	case "or":
		return eval(*n.l, req) || eval(*n.r, req)
	case "not":
		return !eval(*n.l, req)
	}
	a := n.args
	switch n.name {
	case "Host":
		return strings.EqualFold(strings.TrimSuffix(hostOnly(req.Host), "."), a[0])
	case "HostRegexp":
		return n.re.MatchString(hostOnly(req.Host))
	case "Path":
		return req.URL.Path == a[0]
	case "PathPrefix":
		return strings.HasPrefix(req.URL.Path, a[0])
	case "PathRegexp":
		return n.re.MatchString(req.URL.Path)
	case "Method":
		return strings.EqualFold(req.Method, a[0])
	case "Header":
		for _, v := range req.Header.Values(a[0]) {
			if v == a[1] {
				return true
			}
		}
		return false
	case "HeaderRegexp":
		for _, v := range req.Header.Values(a[0]) {
			if n.re.MatchString(v) {
				return true
			}
		}
		return false
	case "Query":
		for _, v := range req.URL.Query()[a[0]] {
			if v == a[1] {
				return true
			}
		}
		return false
	case "QueryRegexp":
		for _, v := range req.URL.Query()[a[0]] {
			if n.re.MatchString(v) {
				return true
			}
		}
		return false
	case "ClientIP":
		ip, err := netip.ParseAddr(hostOnly(req.RemoteAddr))
		return err == nil && n.cidrs[0].Contains(ip.Unmap())
	}
	return false
}

// ------------------------------------------------------------------ the swarm provider

type swarmProvider struct {
	Endpoint string `yaml:"endpoint"`
	TLS      *struct {
		CA                 string `yaml:"ca"`
		Cert               string `yaml:"cert"`
		Key                string `yaml:"key"`
		InsecureSkipVerify bool   `yaml:"insecureSkipVerify"`
	} `yaml:"tls"`
	ExposedByDefault *bool     `yaml:"exposedByDefault"`
	Network          string    `yaml:"network"`
	RefreshSeconds   yaml.Node `yaml:"refreshSeconds"`
	Constraints      string    `yaml:"constraints"`
	DefaultRule      string    `yaml:"defaultRule"`
}

// swarmStatus: what the provider saw on its last poll (shown by api@internal).
type swarmStatus struct {
	Endpoint   string   `json:"endpoint"`
	Connected  bool     `json:"connected"`
	Docker     string   `json:"docker,omitempty"`
	APIVersion string   `json:"apiVersion,omitempty"`
	Services   []string `json:"services"`
	Exposed    []string `json:"exposed"`
	Error      string   `json:"error,omitempty"`
	Polls      int      `json:"polls"`
	At         string   `json:"at"`
}

var (
	swarmCfg      *swarmProvider
	fileState     atomic.Value // *state: the file provider's
	swarmMu       sync.Mutex
	swarmStat     swarmStatus
	swarmRouters  []*liveRouter
	swarmServices = map[string]service{}
)

var publishMu sync.Mutex

// publish makes the live state: the file provider's, the swarm provider's, Traefik's own.
// (Both the file watch and the swarm loop call it: one at a time, so neither's newer state is lost.)
func publish() {
	publishMu.Lock()
	defer publishMu.Unlock()
	f := fileState.Load().(*state)
	st := &state{services: map[string]service{}, middlewares: f.middlewares, certs: f.certs, defCert: f.defCert, minVersion: f.minVersion}
	st.routers = append(st.routers, f.routers...)
	for k, v := range f.services {
		st.services[k] = v
	}
	swarmMu.Lock()
	st.routers = append(st.routers, swarmRouters...)
	for k, v := range swarmServices {
		st.services[k] = v
	}
	swarmMu.Unlock()
	current.Store(withInternal(st))
}

func refreshEvery(p swarmProvider) time.Duration {
	v := strings.TrimSpace(p.RefreshSeconds.Value)
	if v == "" {
		return 15 * time.Second // Traefik's default
	}
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	logf("providers.swarm.refreshSeconds %q: not a duration; using 15s", v)
	return 15 * time.Second
}

// dockerGet: one Docker API request over the provider's endpoint (TLS as configured).
func dockerGet(c *http.Client, base, path string, out interface{}) error {
	r, err := c.Get(base + path)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	if r.StatusCode != 200 {
		b := make([]byte, 300)
		n, _ := r.Body.Read(b)
		return fmt.Errorf("GET %s: HTTP %d: %s", path, r.StatusCode, strings.TrimSpace(string(b[:n])))
	}
	return json.NewDecoder(r.Body).Decode(out)
}

func dockerClient(p swarmProvider) (*http.Client, string, error) {
	u := p.Endpoint
	if !strings.HasPrefix(u, "tcp://") {
		return nil, "", fmt.Errorf("endpoint %q: the stand-in supports tcp:// endpoints only", u)
	}
	t := &http.Transport{}
	scheme := "http://"
	if p.TLS != nil {
		scheme = "https://"
		cfg := &tls.Config{InsecureSkipVerify: p.TLS.InsecureSkipVerify}
		if p.TLS.CA != "" {
			pem, err := os.ReadFile(p.TLS.CA)
			if err != nil {
				return nil, "", fmt.Errorf("tls.ca: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, "", fmt.Errorf("tls.ca %s: no certificate in it", p.TLS.CA)
			}
			cfg.RootCAs = pool
		}
		if p.TLS.Cert != "" || p.TLS.Key != "" {
			kp, err := tls.LoadX509KeyPair(p.TLS.Cert, p.TLS.Key)
			if err != nil {
				return nil, "", fmt.Errorf("tls.cert/tls.key: %v", err)
			}
			cfg.Certificates = []tls.Certificate{kp}
		}
		t.TLSClientConfig = cfg
	}
	return &http.Client{Transport: t, Timeout: 10 * time.Second}, scheme + strings.TrimPrefix(u, "tcp://"), nil
}

type dockerService struct {
	ID   string
	Spec struct {
		Name         string
		Labels       map[string]string
		EndpointSpec *struct{ Mode string }
	}
	Endpoint struct {
		VirtualIPs []struct{ NetworkID, Addr string }
	}
}

type dockerTask struct {
	ServiceID           string
	Status              struct{ State string }
	NetworksAttachments []struct {
		Network   struct{ ID string }
		Addresses []string
	}
}

var nonAlnum = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// labelKey splits "<prefix><name>.<field>" (e.g. traefik.http.routers.probe.rule).
func labelKey(k, prefix string) (name, field string, ok bool) {
	if !strings.HasPrefix(k, prefix) {
		return "", "", false
	}
	rest := strings.TrimPrefix(k, prefix)
	i := strings.Index(rest, ".")
	if i < 0 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// swarmLoop: Traefik's swarm provider loop (pkg/provider/docker/pswarm.go): one Docker client,
// created with the TLS files as they are then, polled every refreshSeconds; when a poll fails the
// client is dropped and a new one (the files read again) is tried after an exponential backoff
// (0.5 s, x1.5, at most 60 s), the last good configuration kept meanwhile.
func swarmLoop(p swarmProvider) {
	every := refreshEvery(p)
	if p.Constraints != "" {
		logf("providers.swarm.constraints is not supported by the stand-in: ignored")
	}
	var c *http.Client
	var base string
	backoff := 500 * time.Millisecond
	for {
		var err error
		if c == nil {
			c, base, err = dockerClient(p)
		}
		if err == nil {
			err = swarmPoll(p, c, base)
		}
		swarmMu.Lock()
		swarmStat.Endpoint = p.Endpoint
		swarmStat.Polls++
		swarmStat.At = time.Now().UTC().Format(time.RFC3339)
		if err != nil {
			if swarmStat.Error != err.Error() {
				logf("swarm provider: Failed to retrieve information of the docker client and server host (%s): %v; retrying in %s", p.Endpoint, err, backoff)
			}
			swarmStat.Connected = false
			swarmStat.Error = err.Error()
		} else {
			swarmStat.Connected = true
			swarmStat.Error = ""
		}
		swarmMu.Unlock()
		publish()
		if err != nil {
			if c != nil {
				c.CloseIdleConnections()
				c = nil
			}
			time.Sleep(backoff)
			if backoff = backoff * 3 / 2; backoff > time.Minute {
				backoff = time.Minute
			}
			continue
		}
		backoff = 500 * time.Millisecond
		time.Sleep(every)
	}
}

func swarmPoll(p swarmProvider, c *http.Client, base string) error {
	var ver struct{ Version, ApiVersion string }
	if err := dockerGet(c, base, "/version", &ver); err != nil {
		return err
	}
	var svcs []dockerService
	if err := dockerGet(c, base, "/services", &svcs); err != nil {
		return err
	}
	var nets []struct{ Id, Name string }
	if err := dockerGet(c, base, "/networks?filters="+url.QueryEscape(`{"scope":["swarm"]}`), &nets); err != nil {
		return err
	}
	var tasks []dockerTask
	if err := dockerGet(c, base, "/tasks?filters="+url.QueryEscape(`{"desired-state":["running"]}`), &tasks); err != nil {
		return err
	}
	netName := map[string]string{}
	for _, n := range nets {
		netName[n.Id] = n.Name
	}
	exposedByDefault := p.ExposedByDefault == nil || *p.ExposedByDefault
	var routers []*liveRouter
	services := map[string]service{}
	var seen, exposed []string
	for _, sv := range svcs {
		seen = append(seen, sv.Spec.Name)
		labels := map[string]string{}
		for k, v := range sv.Spec.Labels {
			labels[strings.ToLower(k)] = v
		}
		enabled := exposedByDefault
		if v, ok := labels["traefik.enable"]; ok {
			enabled = strings.EqualFold(v, "true")
		}
		if !enabled {
			continue
		}
		// Routers and services from the labels.
		type rl struct{ rule, eps, service, prio, tls, mws string }
		rls := map[string]*rl{}
		type sl struct{ port, scheme string }
		sls := map[string]*sl{}
		for k, v := range labels {
			if nm, f, ok := labelKey(k, "traefik.http.routers."); ok {
				if rls[nm] == nil {
					rls[nm] = &rl{}
				}
				switch f {
				case "rule":
					rls[nm].rule = v
				case "entrypoints":
					rls[nm].eps = v
				case "service":
					rls[nm].service = v
				case "priority":
					rls[nm].prio = v
				case "tls":
					rls[nm].tls = v
				case "middlewares":
					rls[nm].mws = v
				default:
					logf("swarm provider: service %s: label %s is not supported by the stand-in: ignored", sv.Spec.Name, k)
				}
			} else if nm, f, ok := labelKey(k, "traefik.http.services."); ok {
				if sls[nm] == nil {
					sls[nm] = &sl{}
				}
				switch f {
				case "loadbalancer.server.port":
					sls[nm].port = v
				case "loadbalancer.server.scheme":
					sls[nm].scheme = v
				}
			}
		}
		normName := strings.Trim(nonAlnum.ReplaceAllString(sv.Spec.Name, "-"), "-")
		if len(sls) == 0 {
			sls[normName] = &sl{} // Traefik: one service named after the Docker service
		}
		if len(rls) == 0 {
			rule := "Host(`" + normName + "`)" // Traefik's default rule: Host(`{{ normalize .Name }}`)
			if p.DefaultRule != "" {
				logf("swarm provider: providers.swarm.defaultRule templates are not supported by the stand-in: using %s", rule)
			}
			rls[normName] = &rl{rule: rule}
		}
		// The servers: each running task's address on the provider's network (or the label's).
		network := p.Network
		if v := labels["traefik.swarm.network"]; v != "" {
			network = v
		}
		lbswarm := strings.EqualFold(labels["traefik.swarm.lbswarm"], "true")
		var addrs []string
		if lbswarm && (sv.Spec.EndpointSpec == nil || sv.Spec.EndpointSpec.Mode != "dnsrr") {
			for _, vip := range sv.Endpoint.VirtualIPs {
				if network == "" || netName[vip.NetworkID] == network {
					addrs = append(addrs, strings.Split(vip.Addr, "/")[0])
					break
				}
			}
		} else {
			for _, t := range tasks {
				if t.ServiceID != sv.ID || t.Status.State != "running" {
					continue
				}
				pick := ""
				for _, na := range t.NetworksAttachments {
					if len(na.Addresses) == 0 {
						continue
					}
					a := strings.Split(na.Addresses[0], "/")[0]
					if network == "" || netName[na.Network.ID] == network {
						pick = a
						break
					}
					if pick == "" {
						pick = a // Traefik: "Defaulting to first available network"
					}
				}
				if pick != "" {
					addrs = append(addrs, pick)
				}
			}
		}
		sort.Strings(addrs)
		okSvcs := map[string]bool{}
		for nm, x := range sls {
			if x.port == "" {
				logf("swarm provider: service %s: %s has no loadbalancer.server.port label: port is missing (skipped, as Traefik does)", sv.Spec.Name, nm)
				continue
			}
			scheme := x.scheme
			if scheme == "" {
				scheme = "http"
			}
			s := service{LoadBalancer: &loadBalancer{}}
			for _, a := range addrs {
				s.LoadBalancer.Servers = append(s.LoadBalancer.Servers, server{URL: scheme + "://" + net.JoinHostPort(a, x.port)})
			}
			services[nm+"@swarm"] = s
			okSvcs[nm] = true
		}
		for nm, x := range rls {
			svc := x.service
			if svc == "" {
				if len(sls) != 1 {
					logf("swarm provider: service %s: router %s has no service and there are %d: skipped", sv.Spec.Name, nm, len(sls))
					continue
				}
				for k := range sls {
					svc = k
				}
			}
			if !strings.Contains(svc, "@") {
				if !okSvcs[svc] {
					continue
				}
				svc += "@swarm"
			}
			if x.rule == "" {
				logf("swarm provider: service %s: router %s has no rule: skipped", sv.Spec.Name, nm)
				continue
			}
			tree, err := parseRule(x.rule)
			if err != nil {
				logf("swarm provider: router %s: rule %q: %v (skipped)", nm, x.rule, err)
				continue
			}
			prio := len(x.rule)
			if n, err := strconv.Atoi(x.prio); err == nil && n != 0 {
				prio = n
			}
			var eps []string
			for _, e := range strings.Split(x.eps, ",") {
				if e = strings.TrimSpace(e); e != "" {
					eps = append(eps, e)
				}
			}
			if x.mws != "" {
				logf("swarm provider: router %s: middlewares from labels are not supported by the stand-in: ignored", nm)
			}
			routers = append(routers, &liveRouter{name: nm + "@swarm", rule: tree, eps: eps, service: svc, priority: prio, tls: strings.EqualFold(x.tls, "true")})
		}
		exposed = append(exposed, sv.Spec.Name)
	}
	sort.Strings(seen)
	sort.Strings(exposed)
	swarmMu.Lock()
	changed := fmt.Sprint(seen, exposed, len(routers)) != fmt.Sprint(swarmStat.Services, swarmStat.Exposed, len(swarmRouters)) || !swarmStat.Connected
	swarmStat.Docker, swarmStat.APIVersion = ver.Version, ver.ApiVersion
	swarmStat.Services, swarmStat.Exposed = seen, exposed
	if swarmStat.Services == nil {
		swarmStat.Services = []string{}
	}
	if swarmStat.Exposed == nil {
		swarmStat.Exposed = []string{}
	}
	swarmRouters, swarmServices = routers, services
	swarmMu.Unlock()
	if changed {
		logf("swarm provider: docker %s (API %s) at %s: %d services, exposed: %v", ver.Version, ver.ApiVersion, p.Endpoint, len(seen), exposed)
	}
	return nil
}
