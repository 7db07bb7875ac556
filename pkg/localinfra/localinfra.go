// Package localinfra starts the infrastructure koppel needs on one machine: an embedded NATS
// JetStream server and a Redis server. Tests use it to get isolated servers on random ports that
// they can kill and restart for fault tests; `make run` uses it for the local all-in-one stack.
package localinfra

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// NATS is an embedded NATS server with JetStream.
type NATS struct {
	Server *server.Server
	opts   *server.Options
}

// StartNATS starts an in-process NATS server with JetStream storing under dir, on port (0 picks a
// free one). Restart keeps the same port and store.
func StartNATS(dir string, port int) (*NATS, error) {
	if port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	}
	n := &NATS{opts: opts}
	return n, n.start()
}

func (n *NATS) start() error {
	s, err := server.NewServer(n.opts)
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return errors.New("nats server: not ready after 10s")
	}
	n.Server = s
	return nil
}

// URL is the client URL of the server.
func (n *NATS) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port) }

// Stop shuts the server down and waits for it.
func (n *NATS) Stop() {
	n.Server.Shutdown()
	n.Server.WaitForShutdown()
}

// Restart stops the server and starts it again on the same port and store, as after a crash.
func (n *NATS) Restart() error {
	n.Stop()
	return n.start()
}

// Redis is a Redis server for local use: a real redis-server child process, or, when no
// redis-server binary is installed, an in-process Redis-compatible store.
type Redis struct {
	Addr string
	// Embedded is true when the in-process store is used instead of redis-server.
	Embedded bool
	cmd      *exec.Cmd
	mini     *miniredis.Miniredis
	dir      string
	port     int
	bin      string
}

// ErrNoRedisServer is returned by StartRedisServer when no redis-server binary is found.
var ErrNoRedisServer = errors.New("redis-server not found on PATH")

// StartRedisServer starts redis-server on a free port with its data in dir (AOF on, so Restart
// keeps the data as a production server would).
func StartRedisServer(dir string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedisServer
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	r := &Redis{Addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, port: port, bin: bin}
	return r, r.start()
}

// StartRedis starts redis-server when it is installed and an embedded store otherwise.
func StartRedis(dir string) (*Redis, error) {
	r, err := StartRedisServer(dir)
	if errors.Is(err, ErrNoRedisServer) {
		m, err := miniredis.Run()
		if err != nil {
			return nil, fmt.Errorf("embedded redis: %w", err)
		}
		return &Redis{Addr: m.Addr(), Embedded: true, mini: m}, nil
	}
	return r, err
}

func (r *Redis) start() error {
	cmd := exec.Command(r.bin,
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--appendonly", "yes", "--save", "",
		"--daemonize", "no", "--logfile", filepath.Join(r.dir, "redis.log"))
	// Dies with its parent; out of the terminal's process group, so a Ctrl-C does not stop it
	// before the services that use it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	r.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if pingRedis(r.Addr) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return fmt.Errorf("redis-server on %s: not answering PING after 10s", r.Addr)
}

// Stop stops the server (SIGKILL: tests use it to simulate a crash; AOF keeps what was written).
func (r *Redis) Stop() {
	if r.mini != nil {
		r.mini.Close()
		return
	}
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}

// Restart kills and starts redis-server again on the same port and data directory.
func (r *Redis) Restart() error {
	if r.mini != nil {
		return errors.New("restart: not supported for the embedded store")
	}
	r.Stop()
	return r.start()
}

// FlushAll deletes every key, as the loss of Redis without a backup does (fault tests).
func (r *Redis) FlushAll() error { return redisCommand(r.Addr, "FLUSHALL", "+OK", 5*time.Second) }

func pingRedis(addr string) error { return redisCommand(addr, "PING", "+PONG", 500*time.Millisecond) }

// redisCommand sends an inline command and checks the first line of the answer.
func redisCommand(addr, command, want string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, min(timeout, 200*time.Millisecond))
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte(command + "\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, want) {
		return fmt.Errorf("%s: unexpected answer %q", command, line)
	}
	return nil
}

// FreePort asks the kernel for a free TCP port on the loopback interface.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// WaitTCP waits until something accepts connections on addr.
func WaitTCP(ctx context.Context, addr string) error {
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TempDir makes a directory for a server's data under the system temp dir.
func TempDir(prefix string) (string, error) { return os.MkdirTemp("", prefix) }
