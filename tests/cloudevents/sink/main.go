// A CloudEvents sink built on the CloudEvents Go SDK (github.com/cloudevents/sdk-go/v2), for
// kesm's tests: it parses each request as the SDK does (binary or structured mode with
// NewEventFromHTTPRequest, a batch with NewEventsFromHTTPRequest), Validate()s every event,
// and appends each valid event to -out as one JSON line (the SDK's structured JSON; data
// that is not UTF-8 as data_base64). An event that does not parse or validate is answered
// 400 and written as {"error": "..."}.
//
// Usage: sink -listen 127.0.0.1:0 -addr-file F -out F [-fail-once id1,id2] [-tls-cert PEM
// -tls-key PEM] (-tls-cert: serve HTTPS).
//
// -fail-once: the first request holding an event with one of these ids is answered 500 and
// nothing of it is recorded; later requests with that id succeed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

type sink struct {
	mu       sync.Mutex
	out      *os.File
	failOnce map[string]bool // id -> already failed
}

func (s *sink) writeLine(v any) {
	line, err := json.Marshal(v)
	if err != nil {
		log.Printf("marshal: %v", err)
		return
	}
	s.out.Write(append(line, '\n'))
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var events []cloudevents.Event
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/cloudevents-batch+json") {
		events, err = cehttp.NewEventsFromHTTPRequest(r)
	} else {
		var e *cloudevents.Event
		e, err = cehttp.NewEventFromHTTPRequest(r)
		if e != nil {
			events = []cloudevents.Event{*e}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		for _, e := range events {
			if verr := e.Validate(); verr != nil {
				err = fmt.Errorf("event %q: %w", e.ID(), verr)
				break
			}
		}
	}
	if err != nil {
		s.writeLine(map[string]string{"error": err.Error()})
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, e := range events {
		if failed, listed := s.failOnce[e.ID()]; listed && !failed {
			s.failOnce[e.ID()] = true
			log.Printf("failing once: %s", e.ID())
			http.Error(w, "failing "+e.ID()+" once", http.StatusInternalServerError)
			return
		}
	}
	for _, e := range events {
		// Bytes that are not text are written as data_base64, so the line stays JSON.
		if !utf8.Valid(e.Data()) {
			e.DataBase64 = true
		}
		s.writeLine(e)
	}
	w.WriteHeader(http.StatusAccepted)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	addrFile := flag.String("addr-file", "", "write the bound host:port here")
	outPath := flag.String("out", "", "append events here, one JSON line each")
	failOnce := flag.String("fail-once", "", "comma-separated event ids answered 500 once")
	tlsCert := flag.String("tls-cert", "", "serve HTTPS with this PEM certificate (and -tls-key)")
	tlsKey := flag.String("tls-key", "", "the PEM private key of -tls-cert")
	flag.Parse()
	if *outPath == "" {
		log.Fatal("-out is required")
	}
	out, err := os.OpenFile(*outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	s := &sink{out: out, failOnce: map[string]bool{}}
	for _, id := range strings.Split(*failOnce, ",") {
		if id != "" {
			s.failOnce[id] = false
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if *addrFile != "" {
		// Written whole, then renamed: a reader never sees half an address.
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ln.Addr().String()), 0o644); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			log.Fatal(err)
		}
	}
	if *tlsCert != "" {
		log.Fatal(http.ServeTLS(ln, s, *tlsCert, *tlsKey))
	}
	log.Fatal(http.Serve(ln, s))
}
