//go:build tools

// Package tools pins, for `go mod tidy`, the one program this module exists to build: kube-apiserver of the
// Kubernetes release named in go.mod, with every staging module (k8s.io/api, k8s.io/apiserver, ...) replaced by its
// published v0.x release of the same minor and patch. scripts/kube-apiserver-build.sh builds it.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
