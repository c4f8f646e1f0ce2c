// A Go Lambda handler for kesm's e2e suite (tests/e2e/lambda_runtimes_e2e_test.cc), run under
// the Lambda Runtime Interface Emulator the provided.al2 way: lambda.Start speaks the Runtime
// API at AWS_LAMBDA_RUNTIME_API. The event is decoded by aws-lambda-go's events.KafkaEvent;
// what it decoded is appended to the file named by KESM_LAMBDA_OUT, one JSON line per record,
// bytes as hex. A record whose base64 does not decode is written with the error.
package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

type line struct {
	API        string      `json:"api"`
	Topic      string      `json:"topic"`
	Partition  int64       `json:"partition"`
	Offset     int64       `json:"offset"`
	Key        *string     `json:"key,omitempty"`
	KeyError   string      `json:"key_error,omitempty"`
	Value      *string     `json:"value,omitempty"`
	ValueError string      `json:"value_error,omitempty"`
	Headers    [][2]string `json:"headers"`
}

// decode turns a base64 string of the event into hex of its bytes.
func decode(b64 string) (*string, string) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, err.Error()
	}
	h := hex.EncodeToString(raw)
	return &h, ""
}

func handle(_ context.Context, event events.KafkaEvent) (map[string]int, error) {
	out, err := os.OpenFile(os.Getenv("KESM_LAMBDA_OUT"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	enc := json.NewEncoder(out)
	count := 0
	for _, records := range event.Records {
		for _, r := range records {
			l := line{API: "go", Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
				Headers: [][2]string{}}
			l.Key, l.KeyError = decode(r.Key)
			l.Value, l.ValueError = decode(r.Value)
			for _, h := range r.Headers {
				for name, value := range h {
					l.Headers = append(l.Headers,
						[2]string{hex.EncodeToString([]byte(name)), hex.EncodeToString(value)})
				}
			}
			if err := enc.Encode(&l); err != nil {
				return nil, err
			}
			count++
		}
	}
	return map[string]int{"processed": count}, nil
}

func main() {
	lambda.Start(handle)
}
