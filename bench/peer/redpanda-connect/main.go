// A minimal Redpanda Connect build for kesm's peer benchmark (bench/peer/README.md):
// only the Kafka (franz-go), io (http_client) and pure (mapping, archive)
// components, instead of the whole distribution.
//
//	rpcn-peer run CONFIG.yaml                 Redpanda Connect's usual CLI (service.RunCLI)
//	rpcn-peer lag BOOTSTRAP GROUP TOPIC       the group's total lag on TOPIC (log end - committed,
//	                                          a partition without a commit counts from its log start)
//
// RPCN_PEER_MAX_IDLE_CONNS_PER_HOST=N raises Go's http.DefaultTransport idle-connection cap per
// host (Go's default is 2), which http_client uses: with max_in_flight above 2, the stock build
// closes most connections after each request and opens new ones. Unset: stock behaviour.
//
//	rpcn-peer produce BOOTSTRAP TOPIC N SIZE  N records of SIZE random bytes, no key, spread
//	                                          round-robin so every partition gets N/P (±1)
package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	_ "github.com/redpanda-data/connect/v4/public/components/io"
	_ "github.com/redpanda-data/connect/v4/public/components/kafka"
	_ "github.com/redpanda-data/connect/v4/public/components/pure"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "lag" {
		os.Exit(lagMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "produce" {
		os.Exit(produceMain(os.Args[2:]))
	}
	if v := os.Getenv("RPCN_PEER_MAX_IDLE_CONNS_PER_HOST"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fmt.Fprintln(os.Stderr, "RPCN_PEER_MAX_IDLE_CONNS_PER_HOST must be a non-negative integer")
			os.Exit(2)
		}
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			t.MaxIdleConnsPerHost = n
			if t.MaxIdleConns != 0 && t.MaxIdleConns < n {
				t.MaxIdleConns = n
			}
		}
	}
	service.RunCLI(context.Background())
}

// lagMain prints "LAG COMMITTED_PARTITIONS PARTITIONS" for GROUP on TOPIC; exit 1 on error.
func lagMain(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: rpcn-peer lag BOOTSTRAP GROUP TOPIC")
		return 2
	}
	bootstrap, group, topic := args[0], args[1], args[2]
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		fmt.Fprintln(os.Stderr, "lag:", err)
		return 1
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lag: end offsets:", err)
		return 1
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lag: start offsets:", err)
		return 1
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lag: committed offsets:", err)
		return 1
	}
	var lag int64
	parts, withCommit := 0, 0
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		parts++
		from := int64(0)
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok && s.Err == nil {
			from = s.Offset
		}
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			from = c.At
			withCommit++
		}
		if d := o.Offset - from; d > 0 {
			lag += d
		}
	})
	fmt.Printf("%d %d %d\n", lag, withCommit, parts)
	return 0
}

func produceMain(args []string) int {
	if len(args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: rpcn-peer produce BOOTSTRAP TOPIC N SIZE")
		return 2
	}
	bootstrap, topic := args[0], args[1]
	n, err1 := strconv.Atoi(args[2])
	size, err2 := strconv.Atoi(args[3])
	if err1 != nil || err2 != nil || n < 0 || size < 0 {
		fmt.Fprintln(os.Stderr, "produce: N and SIZE must be non-negative integers")
		return 2
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		fmt.Fprintln(os.Stderr, "produce:", err)
		return 1
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil || topics.Error() != nil || len(topics[topic].Partitions) == 0 {
		fmt.Fprintln(os.Stderr, "produce: topic", topic, "not found:", err, topics.Error())
		return 1
	}
	parts := int32(len(topics[topic].Partitions))
	value := make([]byte, size)
	_, _ = rand.Read(value)
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := 0; i < n; i++ {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(i) % parts, Value: value},
			func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
				wg.Done()
			})
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "produce:", firstErr)
		return 1
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("produced %d records of %d bytes to %s (%d partitions) in %.1f s\n", n, size, topic, parts, secs)
	return 0
}
