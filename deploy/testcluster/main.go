// Command testcluster starts an embedded etcd and an in-process kube-apiserver
// on loopback, writes an admin kubeconfig and prints "READY <kubeconfig path>"
// once /readyz answers ok. It runs until SIGINT/SIGTERM.
//
// Usage: testcluster [-dir DIR] [-port N] [-etcd-port N] [-v N] [-- extra kube-apiserver flags]
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcluster:", err)
		os.Exit(1)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writePEM(path, typ string, der []byte) {
	must(os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}

type keyPair struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

func newCert(tmpl *x509.Certificate, parent *keyPair) *keyPair {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	must(err)
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * 365 * time.Hour)
	signerCert, signerKey := tmpl, key
	if parent != nil {
		signerCert, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signerKey)
	must(err)
	c, err := x509.ParseCertificate(der)
	must(err)
	return &keyPair{cert: c, der: der, key: key}
}

func (kp *keyPair) write(dir, name string) (certPath, keyPath string) {
	certPath = filepath.Join(dir, name+".crt")
	keyPath = filepath.Join(dir, name+".key")
	writePEM(certPath, "CERTIFICATE", kp.der)
	kder, err := x509.MarshalECPrivateKey(kp.key)
	must(err)
	writePEM(keyPath, "EC PRIVATE KEY", kder)
	return
}

func b64file(path string) string {
	b, err := os.ReadFile(path)
	must(err)
	return base64.StdEncoding.EncodeToString(b)
}

func main() {
	dir := flag.String("dir", "", "working directory (default: a new temp dir)")
	port := flag.Int("port", 0, "secure port of kube-apiserver (0: pick a free one)")
	etcdPort := flag.Int("etcd-port", 0, "etcd client port (0: pick a free one)")
	verbosity := flag.Int("v", 0, "kube-apiserver log verbosity")
	disableAdmission := flag.String("disable-admission-plugins", "ServiceAccount",
		"passed to kube-apiserver; ServiceAccount is off by default because no controller-manager creates the 'default' ServiceAccount")
	flag.Parse()

	tempDir := *dir == ""
	if tempDir {
		d, err := os.MkdirTemp("", "testcluster-")
		must(err)
		*dir = d
	}
	absDir, err := filepath.Abs(*dir)
	must(err)
	*dir = absDir
	pki := filepath.Join(*dir, "pki")
	must(os.MkdirAll(pki, 0o700))
	if *port == 0 {
		*port = freePort()
	}
	if *etcdPort == 0 {
		*etcdPort = freePort()
	}
	peerPort := freePort()

	// ---- certificates and keys (made once per dir) ----
	server := fmt.Sprintf("https://127.0.0.1:%d", *port)
	caCrt := filepath.Join(pki, "ca.crt")
	tokenFile := filepath.Join(pki, "tokens.csv")
	if _, err := os.Stat(tokenFile); err != nil {
		credentials(*dir, pki, *port)
	}
	kubeconfig := filepath.Join(*dir, "kubeconfig")
	tokenLine, err := os.ReadFile(tokenFile)
	must(err)
	token := strings.SplitN(string(tokenLine), ",", 2)[0]
	servingCrt, servingKey := filepath.Join(pki, "apiserver.crt"), filepath.Join(pki, "apiserver.key")
	saKeyPath, saPubPath := filepath.Join(pki, "sa.key"), filepath.Join(pki, "sa.pub")

	// ---- embedded etcd ----
	t0 := time.Now()
	ecfg := embed.NewConfig()
	ecfg.Name = "testcluster"
	ecfg.Dir = filepath.Join(*dir, "etcd")
	cu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", *etcdPort))
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", peerPort))
	ecfg.ListenClientUrls, ecfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	ecfg.ListenPeerUrls, ecfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	ecfg.InitialCluster = ecfg.InitialClusterFromName(ecfg.Name)
	ecfg.LogLevel = "error"
	etcd, err := embed.StartEtcd(ecfg)
	must(err)
	select {
	case <-etcd.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		must(fmt.Errorf("etcd not ready after 60s"))
	}
	fmt.Fprintf(os.Stderr, "testcluster: etcd ready on %s after %v\n", cu, time.Since(t0))

	// ---- kube-apiserver in-process ----
	args := []string{
		"--etcd-servers=" + cu.String(),
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(*port),
		"--cert-dir=" + filepath.Join(*dir, "certdir"),
		"--tls-cert-file=" + servingCrt,
		"--tls-private-key-file=" + servingKey,
		"--client-ca-file=" + caCrt,
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saPubPath,
		"--service-account-signing-key-file=" + saKeyPath,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--disable-admission-plugins=" + *disableAdmission,
		"--v=" + strconv.Itoa(*verbosity),
	}
	// Extra kube-apiserver flags after "--" override the defaults above
	// (pflag: the last occurrence of a scalar flag wins; list flags such as
	// --disable-admission-plugins append instead).
	args = append(args, flag.Args()...)
	cmd := app.NewAPIServerCommand()
	cmd.SetArgs(args)
	done := make(chan error, 1)
	go func() { done <- cmd.Execute() }()

	// ---- wait for /readyz ----
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(caCrt)
	must(err)
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ready := false
	deadline := time.Now().Add(3 * time.Minute)
	for !ready && time.Now().Before(deadline) {
		select {
		case err := <-done:
			etcd.Close()
			must(fmt.Errorf("kube-apiserver exited before ready: %v", err))
		case <-time.After(200 * time.Millisecond):
		}
		req, _ := http.NewRequestWithContext(context.Background(), "GET", server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ready = resp.StatusCode == 200 && string(body) == "ok"
	}
	if !ready {
		etcd.Close()
		must(fmt.Errorf("kube-apiserver not ready after 3 minutes"))
	}
	fmt.Fprintf(os.Stderr, "testcluster: kube-apiserver ready on %s after %v (since etcd start)\n", server, time.Since(t0))
	fmt.Printf("READY %s\n", kubeconfig)
	_ = os.Stdout.Sync()

	// kube-apiserver handles SIGINT/SIGTERM itself (SetupSignalContext); wait for it.
	err = <-done
	etcd.Close()
	if tempDir {
		os.RemoveAll(*dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcluster: kube-apiserver:", err)
		os.Exit(1)
	}
}

// credentials makes the CA, serving and admin certificates, the service-account key,
// the admin token and the kubeconfig, all under dir. They are kept across restarts
// of the same dir, so clients keep working when the server comes back.
func credentials(dir, pki string, port int) {
	ca := newCert(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "testcluster-ca"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil)
	caCrt, _ := ca.write(pki, "ca")
	serving := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca)
	serving.write(pki, "apiserver")
	admin := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca)
	adminCrt, adminKey := admin.write(pki, "admin")

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	saKeyPath := filepath.Join(pki, "sa.key")
	saPubPath := filepath.Join(pki, "sa.pub")
	writePEM(saKeyPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey))
	pubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	must(err)
	writePEM(saPubPath, "PUBLIC KEY", pubDER)

	tokBytes := make([]byte, 16)
	_, err = rand.Read(tokBytes)
	must(err)
	token := hex.EncodeToString(tokBytes)
	tokenFile := filepath.Join(pki, "tokens.csv")
	must(os.WriteFile(tokenFile, []byte(token+",admin,admin-uid,\"system:masters\"\n"), 0o600))

	// ---- kubeconfig (admin: client cert + token) ----
	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	must(os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: testcluster
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
- name: admin-token
  user:
    token: %s
contexts:
- name: testcluster
  context:
    cluster: testcluster
    user: admin
- name: testcluster-token
  context:
    cluster: testcluster
    user: admin-token
current-context: testcluster
`, server, b64file(caCrt), b64file(adminCrt), b64file(adminKey), token)), 0o600))

}
