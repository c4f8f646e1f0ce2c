// Command etcd is etcd's own main (go.etcd.io/etcd/v3's main.go) built from the
// etcd server module that k8s.io/kubernetes pins, so kube-apiserver and etcd come
// from one Go module graph.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
