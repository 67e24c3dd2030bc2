// portainer-agent-standin: the phoenix lab's stand-in for the Portainer agent. It is NOT the
// Portainer agent: it only listens on AGENT_PORT (default 9001), so the portainer_service stack's
// global `agent` service has a task Running on every node and its published port answers.
//
//	GET /ping  -> 204 (the real agent's health route)
//	anything   -> 501 {"message":"portainer-agent-standin: not implemented","standin":true}
//
// Every response carries `X-Phoenix-Standin: portainer-agent`. Plain HTTP (the real agent
// speaks TLS with its own certificate; phoenix's Portainer server uses the manager's socket).
// Stdlib only; built static by lab/standins/build.sh.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
)

func main() {
	port := os.Getenv("AGENT_PORT")
	if port == "" {
		port = "9001"
	}
	log.SetFlags(log.LstdFlags | log.LUTC)
	log.Printf("portainer-agent-standin: phoenix lab stand-in, NOT the Portainer agent; http :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Phoenix-Standin", "portainer-agent")
		if r.URL.Path == "/ping" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotImplemented)
		_ = json.NewEncoder(w).Encode(map[string]interface{}{"message": "portainer-agent-standin: not implemented", "standin": true})
	})))
}
