//go:build tools

// Package tools pins, for `go mod tidy`, the one program this module exists to build: the etcd server of the
// release named in go.mod (the version the Kubernetes release in ../kube-apiserver uses).
// scripts/kube-apiserver-build.sh builds it.
package tools

import _ "go.etcd.io/etcd/server/v3"
