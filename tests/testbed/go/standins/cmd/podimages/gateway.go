package main

// The Istio ingress gateway's data plane (istio/proxyv2 running as a gateway: Envoy configured by
// istiod), for what the tests send through it, after istio/istio 1.31 (pilot/pkg/networking/core
// gateway listeners, SDS for credentialName, VirtualService http routes):
//   - it listens on the target ports of the Services that select its pod, and serves the Gateway
//     servers (selector istio=ingressgateway) on the matching service port;
//   - TLS: the certificate of the server whose hosts match the client's SNI, from the kubernetes.io/tls
//     Secret credentialName in the gateway's namespace, read again for each connection (as SDS
//     pushes a changed Secret); no match, no handshake (Envoy has no filter chain for that name);
//   - plain HTTP: a server with tls.httpsRedirect answers 301 to https;
//   - routes: the first VirtualService bound to the Gateway whose hosts match, its first http route
//     whose uri prefix (or exact) matches; the destination Service with a ready endpoint answers as its
//     image does (the Pipelines UI's page, and for /apis/ the UI server's 403 on internal endpoints or
//     its proxying to ml-pipeline; ml-pipeline's /apis/v2beta1/healthz: the pods of those images are
//     kwok's and run nothing), else 503 "no healthy upstream", and 404 with no route.
// What it reads (Gateways, VirtualServices, Secrets, Services, EndpointSlices, Pods) is read under the
// gateway's service account; istiod reads the same in a real mesh.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

var (
	gatewaysGVR        = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "gateways"}
	virtualServicesGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
)

type gateway struct {
	cs        *kubernetes.Clientset
	dc        *dynamic.DynamicClient
	namespace string
	pod       string
	mu        sync.Mutex
	servers   map[int32]*http.Server // by target port
}

func runGateway(ctx context.Context) error {
	cs, dc, err := clients()
	if err != nil {
		return err
	}
	ns, pod := os.Getenv("POD_NAMESPACE"), os.Getenv("POD_NAME")
	if ns == "" || pod == "" {
		return fmt.Errorf("POD_NAME and POD_NAMESPACE must be set (the gateway's Deployment sets them)")
	}
	g := &gateway{cs: cs, dc: dc, namespace: ns, pod: pod, servers: map[int32]*http.Server{}}
	logf("ingress gateway stand-in: pod %s/%s", ns, pod)
	every(ctx, 2*time.Second, func() error { return g.sync(ctx) })
	g.mu.Lock()
	for _, s := range g.servers {
		s.Close()
	}
	g.mu.Unlock()
	return nil
}

// sync listens on the target port of every Service port selecting this pod.
func (g *gateway) sync(ctx context.Context) error {
	me, err := g.cs.CoreV1().Pods(g.namespace).Get(ctx, g.pod, metav1.GetOptions{})
	if err != nil {
		return err
	}
	svcs, err := g.cs.CoreV1().Services(g.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, s := range svcs.Items {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(me.Labels)) {
			continue
		}
		for _, p := range s.Spec.Ports {
			target := p.TargetPort.IntVal
			if target == 0 {
				target = p.Port
			}
			g.mu.Lock()
			_, up := g.servers[target]
			g.mu.Unlock()
			if up {
				continue
			}
			if err := g.listen(ctx, target, p.Port); err != nil {
				logf("port %d: %v", target, err)
			}
		}
	}
	return nil
}

func (g *gateway) listen(ctx context.Context, target, servicePort int32) error {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(int(target)))
	if err != nil {
		return err
	}
	// Whether a port is TLS is the Gateway's to say, and the Gateway may come after the listener: each
	// connection is TLS when it starts with a handshake record, as Envoy's tls_inspector tells.
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		return g.certificate(ctx, servicePort, hello.ServerName)
	}}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.route(w, r, servicePort, r.TLS != nil) })}
	g.mu.Lock()
	g.servers[target] = srv
	g.mu.Unlock()
	go func() { _ = srv.Serve(&inspectingListener{Listener: l, tls: cfg}) }()
	logf("listening on %d (service port %d)", target, servicePort)
	return nil
}

// inspectingListener hands out TLS connections for clients that start with a TLS handshake record
// (content type 22), plain ones otherwise.
type inspectingListener struct {
	net.Listener
	tls *tls.Config
}

func (l *inspectingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	first, err := r.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: r}
	if err == nil && first[0] == 22 {
		return tls.Server(pc, l.tls), nil
	}
	return pc, nil
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// gatewayServers returns the servers of the Gateways that select an ingress gateway, with the
// Gateway's namespace/name.
func (g *gateway) gatewayServers(ctx context.Context) ([]map[string]any, []string) {
	list, err := g.dc.Resource(gatewaysGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		logf("listing gateways: %v", err)
		return nil, nil
	}
	var servers []map[string]any
	var names []string
	for _, gw := range list.Items {
		sel, _, _ := unstructured.NestedStringMap(gw.Object, "spec", "selector")
		if sel["istio"] != "ingressgateway" {
			continue
		}
		ss, _, _ := unstructured.NestedSlice(gw.Object, "spec", "servers")
		for _, s := range ss {
			if m, ok := s.(map[string]any); ok {
				servers = append(servers, m)
				names = append(names, gw.GetNamespace()+"/"+gw.GetName())
			}
		}
	}
	return servers, names
}

func serverPort(s map[string]any) int32 {
	n, _, _ := unstructured.NestedInt64(s, "port", "number")
	return int32(n)
}

func hostMatches(hosts []string, host string) bool {
	for _, h := range hosts {
		if i := strings.LastIndex(h, "/"); i >= 0 {
			h = h[i+1:]
		}
		if h == "*" || h == host || (strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:])) {
			return true
		}
	}
	return false
}

func (g *gateway) certificate(ctx context.Context, port int32, sni string) (*tls.Certificate, error) {
	servers, _ := g.gatewayServers(ctx)
	for _, s := range servers {
		hosts, _, _ := unstructured.NestedStringSlice(s, "hosts")
		mode, _, _ := unstructured.NestedString(s, "tls", "mode")
		if serverPort(s) != port || mode != "SIMPLE" || !hostMatches(hosts, sni) {
			continue
		}
		name, _, _ := unstructured.NestedString(s, "tls", "credentialName")
		secret, err := g.cs.CoreV1().Secrets(g.namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("credential %s: %w", name, err)
		}
		cert, err := tls.X509KeyPair(secret.Data[v1.TLSCertKey], secret.Data[v1.TLSPrivateKeyKey])
		if err != nil {
			return nil, fmt.Errorf("credential %s: %w", name, err)
		}
		return &cert, nil
	}
	return nil, fmt.Errorf("no server on port %d for %q", port, sni)
}

func (g *gateway) route(w http.ResponseWriter, r *http.Request, port int32, secure bool) {
	w.Header().Set("Server", "istio-envoy")
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ctx := r.Context()
	servers, names := g.gatewayServers(ctx)
	for i, s := range servers {
		hosts, _, _ := unstructured.NestedStringSlice(s, "hosts")
		if serverPort(s) != port || !hostMatches(hosts, host) {
			continue
		}
		if redirect, _, _ := unstructured.NestedBool(s, "tls", "httpsRedirect"); redirect && !secure {
			http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusMovedPermanently)
			return
		}
		if dest, ok := g.destination(ctx, names[i], host, r.URL.Path); ok {
			g.backend(w, r, dest)
			return
		}
	}
	http.NotFound(w, r)
}

// destination is the host of the first matching route of a VirtualService bound to gatewayName.
func (g *gateway) destination(ctx context.Context, gatewayName, host, path string) (string, bool) {
	list, err := g.dc.Resource(virtualServicesGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		logf("listing virtual services: %v", err)
		return "", false
	}
	for _, vs := range list.Items {
		gws, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "gateways")
		hosts, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "hosts")
		bound := false
		for _, gw := range gws {
			if !strings.Contains(gw, "/") {
				gw = vs.GetNamespace() + "/" + gw
			}
			bound = bound || gw == gatewayName
		}
		if !bound || !hostMatches(hosts, host) {
			continue
		}
		routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
		for _, rt := range routes {
			m, _ := rt.(map[string]any)
			matches, _, _ := unstructured.NestedSlice(m, "match")
			ok := len(matches) == 0
			for _, mm := range matches {
				mt, _ := mm.(map[string]any)
				prefix, hasPrefix, _ := unstructured.NestedString(mt, "uri", "prefix")
				exact, hasExact, _ := unstructured.NestedString(mt, "uri", "exact")
				ok = ok || (hasPrefix && strings.HasPrefix(path, prefix)) || (hasExact && path == exact) || (!hasPrefix && !hasExact)
			}
			if !ok {
				continue
			}
			dests, _, _ := unstructured.NestedSlice(m, "route")
			if len(dests) == 0 {
				continue
			}
			d, _ := dests[0].(map[string]any)
			h, _, _ := unstructured.NestedString(d, "destination", "host")
			if !strings.Contains(h, ".") {
				h += "." + vs.GetNamespace()
			}
			return h, true
		}
	}
	return "", false
}

// backend answers as the destination Service's ready pod's image would.
func (g *gateway) backend(w http.ResponseWriter, r *http.Request, dest string) {
	parts := strings.Split(dest, ".")
	name, ns := parts[0], parts[1]
	ctx := r.Context()
	slices, err := g.cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	image := ""
	if err == nil {
		for _, sl := range slices.Items {
			for _, ep := range sl.Endpoints {
				if image != "" || (ep.Conditions.Ready != nil && !*ep.Conditions.Ready) || ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
					continue
				}
				if pod, err := g.cs.CoreV1().Pods(ns).Get(ctx, ep.TargetRef.Name, metav1.GetOptions{}); err == nil && len(pod.Spec.Containers) > 0 {
					image = pod.Spec.Containers[0].Image
				}
			}
		}
	} else {
		logf("endpoints of %s: %v", dest, err)
	}
	switch {
	case image == "":
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "no healthy upstream")
	case strings.Contains(image, "kfp-frontend") && strings.HasPrefix(r.URL.Path, "/apis/"):
		// The UI server (kubeflow/pipelines 2.17.0 frontend/server/app.ts): 403 for the endpoints not
		// meant for external use, every other /apis/v1beta1/ and /apis/v2beta1/ path proxied to the API
		// server, ml-pipeline in its own namespace.
		for _, internal := range []string{"/apis/v1beta1/workflows", "/apis/v1beta1/scheduledworkflows", "/apis/v2beta1/workflows", "/apis/v2beta1/scheduledworkflows"} {
			if r.URL.Path == internal || strings.HasPrefix(r.URL.Path, internal+"/") {
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprintf(w, "%s endpoint is not meant for external usage.", r.URL.RequestURI())
				return
			}
		}
		if strings.HasPrefix(r.URL.Path, "/apis/v1beta1/runs/") && strings.HasSuffix(r.URL.Path, "reportMetrics") {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "%s endpoint is not meant for external usage.", r.URL.RequestURI())
			return
		}
		g.backend(w, r, "ml-pipeline."+ns+".svc.cluster.local")
	case strings.Contains(image, "kfp-frontend"):
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<!doctype html><html><head><title>Kubeflow Pipelines</title></head><body>mlplat testbed stand-in for the "+
			"Kubeflow Pipelines UI (%s, service %s)</body></html>", image, dest)
	case strings.Contains(image, "kfp-api-server"):
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/apis/v2beta1/healthz") {
			tag := image[strings.LastIndex(image, ":")+1:]
			_ = json.NewEncoder(w).Encode(map[string]any{"commit_sha": "mlplat-standin", "tag_name": tag, "multi_user": false})
			return
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"Not Found","code":5}`)
	default:
		fmt.Fprintf(w, "mlplat testbed stand-in backend (%s)", image)
	}
}
