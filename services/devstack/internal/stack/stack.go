// Package stack runs the whole koppel system on one machine, every service as a real process:
// an embedded NATS JetStream server, a Redis server, the mapping service, the gateway (webhooks),
// the admin service (admin API and console), the scheduler, the four workers and the sandbox
// simulators. `make run` uses it for the local stack
// and the end-to-end tests use it to test services as they run in production, including killing
// and restarting them.
package stack

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/koppel/koppel/pkg/httpapi"
	"github.com/koppel/koppel/pkg/localinfra"
	"github.com/koppel/koppel/pkg/mapping"
)

// Services in start order: mapping first, as every other service needs it.
var Services = []string{"sandbox", "mapping", "gateway", "admin", "scheduler", "relation", "product", "invoice", "payment"}

// Options configure a stack.
type Options struct {
	// BinDir holds the service binaries (see Build). Required.
	BinDir string
	// DataDir keeps NATS and Redis data, the encryption key and the logs. Required.
	DataDir string
	// RedisURL uses an existing Redis instead of starting one.
	RedisURL string
	// GatewayAddr, AdminAddr and SandboxAddr are the user-facing addresses; default 127.0.0.1:0
	// (a free port).
	GatewayAddr string
	AdminAddr   string
	SandboxAddr string
	// AdminToken is the admin API's bearer token; default a random one.
	AdminToken string
	// Env adds or overrides variables of every service (for example KOPPEL_LOG_LEVEL).
	Env map[string]string
	// Logs receives every service's log lines, prefixed with its name; default: discarded
	// (they are always written to DataDir/logs).
	Logs io.Writer
	// Without leaves services out (for example "scheduler" in tests that drive runs by hand).
	Without []string
}

// Stack is a running system.
type Stack struct {
	NATS       *localinfra.NATS
	Redis      *localinfra.Redis
	RedisURL   string
	AdminToken string
	// Addrs are the main address of each service: the gateway's, admin's and sandbox's HTTP, the
	// mapping's gRPC; OpsAddrs their ops servers.
	Addrs    map[string]string
	OpsAddrs map[string]string

	opts  Options
	mu    sync.Mutex
	procs map[string]*proc
	env   map[string][]string
	// auth is how each caller shows itself to the mapping service: a token and a client
	// certificate of the stack's own throw-away CA, as in a cluster with cert-manager.
	tokens map[string]string
	pki    *mapping.DevPKI
	// consoleKey seals the console's sessions (KOPPEL_CONSOLE_SESSION_KEY).
	consoleKey string
}

// callers are the identities the stack gives out: every service that calls the mapping
// service, and the operator for the tests' own calls.
var callers = []string{"admin", "gateway", "scheduler", "relation", "product", "invoice", "payment", "operator"}

// DialMapping connects to the stack's mapping service as the operator, who may call every
// method.
func (s *Stack) DialMapping() (*mapping.Client, error) {
	return mapping.Dial(s.Addrs["mapping"], s.mappingDialOptions("operator")...)
}

func (s *Stack) mappingDialOptions(caller string) []mapping.DialOption {
	return []mapping.DialOption{mapping.WithToken(s.tokens[caller]),
		mapping.WithTLS(mapping.TLSFiles{CA: s.pki.CA, Cert: s.pki.Clients[caller][0], Key: s.pki.Clients[caller][1]})}
}

// mappingAuth makes a token and a client certificate for every caller, and the mapping
// service's certificate.
func (s *Stack) mappingAuth() error {
	pki, err := mapping.WriteDevPKI(filepath.Join(s.opts.DataDir, "tls"), []string{"127.0.0.1", "localhost"}, callers)
	if err != nil {
		return err
	}
	s.pki, s.tokens = pki, map[string]string{}
	for _, c := range callers {
		s.tokens[c] = randomToken()
	}
	return nil
}

// mappingEnv is the mapping-related environment of a service: the mapping service's TLS and
// callers, or a caller's token and certificate.
func (s *Stack) mappingEnv(name string, env map[string]string) {
	if name == "mapping" {
		var hashes []string
		for _, c := range callers {
			sum := sha256.Sum256([]byte(s.tokens[c]))
			hashes = append(hashes, c+":"+hex.EncodeToString(sum[:]))
		}
		env["KOPPEL_GRPC_CALLER_TOKEN_HASHES"] = strings.Join(hashes, ",")
		env["KOPPEL_GRPC_TLS_CERT"], env["KOPPEL_GRPC_TLS_KEY"] = s.pki.ServerCert, s.pki.ServerKey
		env["KOPPEL_GRPC_TLS_CLIENT_CA"] = s.pki.CA
		return
	}
	if _, ok := s.pki.Clients[name]; !ok {
		return
	}
	env["KOPPEL_MAPPING_TOKEN"] = s.tokens[name]
	env["KOPPEL_MAPPING_TLS_CA"] = s.pki.CA
	env["KOPPEL_MAPPING_TLS_CERT"], env["KOPPEL_MAPPING_TLS_KEY"] = s.pki.Clients[name][0], s.pki.Clients[name][1]
}

// RepoRoot finds the repository root (the directory with go.work) from the working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above the working directory")
		}
		dir = parent
	}
}

// Build compiles every service binary into binDir.
func Build(ctx context.Context, binDir string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", binDir + string(os.PathSeparator)}
	for _, s := range Services {
		args = append(args, "./services/"+s)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

func addrOr(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	return addr
}

// freeAddr resolves ":0"-style addresses to a concrete free port, since the address must be
// known before the process starts.
func freeAddr(addr string) (string, error) {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port != "0" {
		return addr, nil
	}
	p, err := localinfra.FreePort()
	if err != nil {
		return "", err
	}
	return host + ":" + strconv.Itoa(p), nil
}

func splitHostPort(addr string) (string, string, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", fmt.Errorf("address %q: want host:port", addr)
	}
	host := addr[:i]
	if host == "" {
		host = "127.0.0.1"
	}
	return host, addr[i+1:], nil
}

// Start starts infrastructure and every service, and waits until each is ready.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if opts.BinDir == "" || opts.DataDir == "" {
		return nil, errors.New("stack: BinDir and DataDir are required")
	}
	if opts.Logs == nil {
		opts.Logs = io.Discard
	}
	for _, d := range []string{"nats", "redis", "logs"} {
		if err := os.MkdirAll(filepath.Join(opts.DataDir, d), 0o755); err != nil {
			return nil, err
		}
	}
	s := &Stack{opts: opts, procs: map[string]*proc{}, env: map[string][]string{}, Addrs: map[string]string{}, OpsAddrs: map[string]string{}}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()

	if s.NATS, err = localinfra.StartNATS(filepath.Join(opts.DataDir, "nats"), 0); err != nil {
		return nil, err
	}
	s.RedisURL = opts.RedisURL
	if s.RedisURL == "" {
		if s.Redis, err = localinfra.StartRedis(filepath.Join(opts.DataDir, "redis")); err != nil {
			return nil, err
		}
		s.RedisURL = "redis://" + s.Redis.Addr + "/0"
	}
	keys, err := encryptionKeys(opts.DataDir)
	if err != nil {
		return nil, err
	}
	s.AdminToken = opts.AdminToken
	if s.AdminToken == "" {
		s.AdminToken = randomToken()
	}
	if err := s.mappingAuth(); err != nil {
		return nil, err
	}

	// Each service starts once the ones before it are ready, on ports picked just before; a
	// service that exits during start-up (a port taken meanwhile by another process) is
	// started again on new ports, up to three times.
	for _, name := range Services {
		if s.without(name) {
			continue
		}
		var startErr error
		for range 3 {
			if startErr = s.startService(ctx, name, keys); !errors.Is(startErr, errExitedAtStart) {
				break
			}
		}
		if startErr != nil {
			return nil, startErr
		}
	}
	return s, nil
}

func (s *Stack) without(name string) bool {
	for _, w := range s.opts.Without {
		if w == name {
			return true
		}
	}
	return false
}

var errExitedAtStart = errors.New("exited during start-up")

// startService picks the service's ports, starts it and waits until it is ready.
func (s *Stack) startService(ctx context.Context, name, keys string) error {
	var err error
	if s.OpsAddrs[name], err = freeAddr("127.0.0.1:0"); err != nil {
		return err
	}
	switch name {
	case "gateway":
		s.Addrs[name], err = freeAddr(addrOr(s.opts.GatewayAddr))
	case "admin":
		s.Addrs[name], err = freeAddr(addrOr(s.opts.AdminAddr))
	case "sandbox":
		s.Addrs[name], err = freeAddr(addrOr(s.opts.SandboxAddr))
	case "mapping":
		s.Addrs[name], err = freeAddr("127.0.0.1:0")
	}
	if err != nil {
		return err
	}
	env := map[string]string{
		"KOPPEL_OPS_ADDR":     s.OpsAddrs[name],
		"KOPPEL_NATS_URL":     s.NATS.URL(),
		"KOPPEL_MAPPING_ADDR": s.Addrs["mapping"],
		"KOPPEL_LOG_LEVEL":    "info",
	}
	s.mappingEnv(name, env)
	switch name {
	case "admin", "relation", "product", "invoice", "payment":
		// The tenants' systems are the sandbox, on the loopback address: allow exactly it.
		if sb := s.Addrs["sandbox"]; sb != "" {
			env["KOPPEL_OUTBOUND_HOSTS"] = "http://" + sb
			env["KOPPEL_OUTBOUND_NETWORKS"] = "127.0.0.0/8"
		}
	}
	switch name {
	case "sandbox":
		env["KOPPEL_HTTP_ADDR"] = s.Addrs["sandbox"]
	case "mapping":
		env["KOPPEL_GRPC_ADDR"], env["KOPPEL_REDIS_URL"], env["KOPPEL_ENCRYPTION_KEYS"] = s.Addrs["mapping"], s.RedisURL, keys
	case "gateway":
		env["KOPPEL_HTTP_ADDR"] = s.Addrs["gateway"]
	case "admin":
		env["KOPPEL_HTTP_ADDR"] = s.Addrs["admin"]
		env["KOPPEL_ADMIN_TOKEN_HASHES"] = httpapi.HashToken(s.AdminToken)
		env["KOPPEL_PUBLIC_URL"] = "http://" + s.Addrs["gateway"]
		// One key for the stack's life, so a restarted admin service keeps the console's sign-ins.
		if s.consoleKey == "" {
			k := make([]byte, 32)
			_, _ = rand.Read(k)
			s.consoleKey = base64.StdEncoding.EncodeToString(k)
		}
		env["KOPPEL_CONSOLE_SESSION_KEY"] = s.consoleKey
	case "scheduler":
		env["KOPPEL_SCHEDULER_TICK"] = "5s"
	}
	for k, v := range s.opts.Env {
		env[k] = v
	}
	s.env[name] = s.env[name][:0]
	for k, v := range env {
		s.env[name] = append(s.env[name], k+"="+v)
	}
	if err := s.startProc(name); err != nil {
		return err
	}
	return s.WaitReady(ctx, name)
}

// encryptionKeys reads the stack's secret-encryption key from dataDir, making one the first time,
// so a restarted stack can still open the secrets it stored.
func encryptionKeys(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "encryption-keys")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	spec := "local:" + base64.StdEncoding.EncodeToString(key)
	if err := os.WriteFile(path, []byte(spec+"\n"), 0o600); err != nil {
		return "", err
	}
	return spec, nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (s *Stack) startProc(name string) error {
	bin := filepath.Join(s.opts.BinDir, name)
	logFile, err := os.OpenFile(filepath.Join(s.opts.DataDir, "logs", name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), s.env[name]...)
	// A service dies with the process that started it, so a test that panics or times out
	// leaves no stray services behind; it has its own process group, so a Ctrl-C reaches only
	// the stack, which then stops the services in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			fmt.Fprintf(s.opts.Logs, "%-9s | %s\n", name, line)
		}
		logFile.Close()
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs[name] = p
	s.mu.Unlock()
	return nil
}

var readyClient = &http.Client{Timeout: 2 * time.Second}

// WaitReady waits until the service's /readyz answers 200, or its process exits.
func (s *Stack) WaitReady(ctx context.Context, name string) error {
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%s is not running", name)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	url := "http://" + s.OpsAddrs[name] + "/readyz"
	for {
		select {
		case <-p.done:
			s.mu.Lock()
			delete(s.procs, name)
			s.mu.Unlock()
			return fmt.Errorf("%s %w (see %s)", name, errExitedAtStart, filepath.Join(s.opts.DataDir, "logs", name+".log"))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := readyClient.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
}

// Kill kills a service with SIGKILL, as a crash would.
func (s *Stack) Kill(name string) {
	s.signal(name, syscall.SIGKILL)
}

// Terminate stops a service with SIGTERM and waits for its graceful shutdown.
func (s *Stack) Terminate(name string) {
	s.signal(name, syscall.SIGTERM)
}

func (s *Stack) signal(name string, sig syscall.Signal) {
	s.mu.Lock()
	p := s.procs[name]
	delete(s.procs, name)
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Restart starts a stopped or killed service again and waits until it is ready.
func (s *Stack) Restart(ctx context.Context, name string) error {
	s.Terminate(name)
	if err := s.startProc(name); err != nil {
		return err
	}
	return s.WaitReady(ctx, name)
}

// Stop stops every service (gracefully, in reverse start order) and the infrastructure.
func (s *Stack) Stop() {
	for i := len(Services) - 1; i >= 0; i-- {
		s.Terminate(Services[i])
	}
	if s.NATS != nil && s.NATS.Server != nil {
		s.NATS.Stop()
	}
	if s.Redis != nil {
		s.Redis.Stop()
	}
}
