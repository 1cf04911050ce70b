// Command go_clientv3 drives one etcd v3 server with etcd's own Go client (clientv3 and
// clientv3/concurrency, 3.4) and prints a transcript: revisions, values, versions and
// outcomes, with what legitimately differs between servers (lease ids) masked. Run against
// the reference etcd and against cairn, the transcripts must be identical
// (tests/tests/go_client.rs).
//
// Usage: go_clientv3 127.0.0.1:PORT
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
	"go.etcd.io/etcd/mvcc/mvccpb"
)

// A step that takes longer than this fails the run.
const stepTimeout = 10 * time.Second

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go_clientv3 HOST:PORT")
		os.Exit(2)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{os.Args[1]},
		DialTimeout: 5 * time.Second,
	})
	check("connect", err)
	defer cli.Close()
	kv(cli)
	txn(cli)
	watch(cli)
	lease(cli)
	mutex(cli)
	election(cli)
	stm(cli)
}

func check(step string, err error) {
	if err != nil {
		fmt.Printf("%s: error %v\n", step, err)
		os.Exit(1)
	}
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), stepTimeout)
}

// showKV prints what a client sees of a key; a lease id is masked.
func showKV(kv *mvccpb.KeyValue) string {
	lease := "none"
	if kv.Lease != 0 {
		lease = "<lease>"
	}
	return fmt.Sprintf("%s=%q create=%d mod=%d version=%d lease=%s",
		maskLease(string(kv.Key)), kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, lease)
}

// maskLease replaces the hex lease id concurrency appends to a key (pfx/<lease>).
func maskLease(key string) string {
	slash := strings.LastIndex(key, "/")
	if slash < 0 {
		return key
	}
	if _, err := strconv.ParseUint(key[slash+1:], 16, 64); err == nil && len(key)-slash > 8 {
		return key[:slash+1] + "<lease>"
	}
	return key
}

func showGet(resp *clientv3.GetResponse) string {
	kvs := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		kvs = append(kvs, showKV(kv))
	}
	return fmt.Sprintf("rev=%d count=%d more=%v kvs=%v", resp.Header.Revision, resp.Count, resp.More, kvs)
}

func kv(cli *clientv3.Client) {
	c, cancel := ctx()
	defer cancel()
	put, err := cli.Put(c, "a", "1")
	check("put", err)
	fmt.Printf("put a: rev=%d\n", put.Header.Revision)
	put, err = cli.Put(c, "a", "2", clientv3.WithPrevKV())
	check("put", err)
	fmt.Printf("put a prev: rev=%d prev=%s\n", put.Header.Revision, showKV(put.PrevKv))
	_, err = cli.Put(c, "b", "3")
	check("put", err)
	get, err := cli.Get(c, "", clientv3.WithPrefix())
	check("get", err)
	fmt.Printf("get all: %s\n", showGet(get))
	get, err = cli.Get(c, "a", clientv3.WithRev(2))
	check("get", err)
	fmt.Printf("get a at 2: %s\n", showGet(get))
	get, err = cli.Get(c, "", clientv3.WithPrefix(), clientv3.WithLimit(1),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	check("get", err)
	fmt.Printf("get sorted limit: %s\n", showGet(get))
	del, err := cli.Delete(c, "b", clientv3.WithPrevKV())
	check("delete", err)
	fmt.Printf("delete b: rev=%d deleted=%d prev=%s\n", del.Header.Revision, del.Deleted, showKV(del.PrevKvs[0]))
	_, err = cli.Get(c, "a", clientv3.WithRev(100))
	fmt.Printf("get future: %v\n", err)
}

func txn(cli *clientv3.Client) {
	c, cancel := ctx()
	defer cancel()
	for _, want := range []string{"2", "nope"} {
		resp, err := cli.Txn(c).
			If(clientv3.Compare(clientv3.Value("a"), "=", want)).
			Then(clientv3.OpPut("a", "txn-"+want), clientv3.OpGet("a")).
			Else(clientv3.OpGet("a")).
			Commit()
		check("txn", err)
		last := resp.Responses[len(resp.Responses)-1].GetResponseRange()
		fmt.Printf("txn a=%s: rev=%d succeeded=%v ops=%d then-get=%s\n", want, resp.Header.Revision,
			resp.Succeeded, len(resp.Responses), showKV(last.Kvs[0]))
	}
	_, err := cli.Txn(c).Then(clientv3.OpPut("d", "1"), clientv3.OpPut("d", "2")).Commit()
	fmt.Printf("txn duplicate: %v\n", err)
}

func watch(cli *clientv3.Client) {
	c, cancel := ctx()
	defer cancel()
	start, err := cli.Put(c, "w/1", "x")
	check("put", err)
	_, err = cli.Put(c, "w/1", "y")
	check("put", err)
	wch := cli.Watch(c, "w/", clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision), clientv3.WithPrevKV())
	_, err = cli.Delete(c, "w/1")
	check("delete", err)
	seen := 0
	for resp := range wch {
		check("watch", resp.Err())
		for _, ev := range resp.Events {
			prev := "none"
			if ev.PrevKv != nil {
				prev = showKV(ev.PrevKv)
			}
			// The header revision of history replayed at creation depends on when the
			// server caught the watcher up (etcd: within 100 ms), so only its bound is printed.
			fmt.Printf("watch event: header>=mod=%v %s %s prev=%s\n", resp.Header.Revision >= ev.Kv.ModRevision,
				ev.Type, showKV(ev.Kv), prev)
			seen++
		}
		if seen >= 3 {
			break
		}
	}
	check("request progress", cli.RequestProgress(c))
	for resp := range wch {
		if resp.IsProgressNotify() {
			fmt.Printf("watch progress: rev=%d\n", resp.Header.Revision)
			break
		}
	}
}

func lease(cli *clientv3.Client) {
	c, cancel := ctx()
	defer cancel()
	grant, err := cli.Grant(c, 60)
	check("grant", err)
	fmt.Printf("grant: ttl=%d\n", grant.TTL)
	_, err = cli.Put(c, "l/1", "v", clientv3.WithLease(grant.ID))
	check("put", err)
	ka, err := cli.KeepAliveOnce(c, grant.ID)
	check("keepalive", err)
	fmt.Printf("keepalive: ttl=%d same-id=%v\n", ka.TTL, ka.ID == grant.ID)
	ttl, err := cli.TimeToLive(c, grant.ID, clientv3.WithAttachedKeys())
	check("ttl", err)
	keys := make([]string, 0, len(ttl.Keys))
	for _, k := range ttl.Keys {
		keys = append(keys, string(k))
	}
	fmt.Printf("ttl: granted=%d keys=%v\n", ttl.GrantedTTL, keys)
	rev, err := cli.Revoke(c, grant.ID)
	check("revoke", err)
	fmt.Printf("revoke: rev=%d\n", rev.Header.Revision)
	get, err := cli.Get(c, "l/", clientv3.WithPrefix())
	check("get", err)
	fmt.Printf("after revoke: %s\n", showGet(get))
	_, err = cli.Revoke(c, grant.ID)
	fmt.Printf("revoke again: %v\n", err)
}

func mutex(cli *clientv3.Client) {
	c, cancel := ctx()
	defer cancel()
	s1, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	check("session", err)
	defer s1.Close()
	s2, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	check("session", err)
	defer s2.Close()
	m1 := concurrency.NewMutex(s1, "/lock")
	m2 := concurrency.NewMutex(s2, "/lock")
	check("lock 1", m1.Lock(c))
	fmt.Printf("lock 1: key=%s rev=%d\n", maskLease(m1.Key()), m1.Header().Revision)
	short, shortCancel := context.WithTimeout(c, 300*time.Millisecond)
	err = m2.Lock(short)
	shortCancel()
	fmt.Printf("lock 2 while held: %v\n", err)
	held, err := cli.Txn(c).If(m1.IsOwner()).Commit()
	check("owner txn", err)
	fmt.Printf("owner 1: %v\n", held.Succeeded)
	check("unlock 1", m1.Unlock(c))
	check("lock 2", m2.Lock(c))
	fmt.Printf("lock 2: key=%s\n", maskLease(m2.Key()))
	check("unlock 2", m2.Unlock(c))
	get, err := cli.Get(c, "/lock/", clientv3.WithPrefix())
	check("get", err)
	fmt.Printf("locks left: %d\n", get.Count)
}

func election(cli *clientv3.Client) {
	c, cancel := ctx()
	defer cancel()
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	check("session", err)
	defer s.Close()
	e := concurrency.NewElection(s, "/election")
	check("campaign", e.Campaign(c, "first"))
	leader, err := e.Leader(c)
	check("leader", err)
	fmt.Printf("leader: %s\n", showGet(leader))
	check("proclaim", e.Proclaim(c, "second"))
	leader, err = e.Leader(c)
	check("leader", err)
	fmt.Printf("leader after proclaim: %s\n", showGet(leader))
	check("resign", e.Resign(c))
	_, err = e.Leader(c)
	fmt.Printf("leader after resign: %v\n", err)
}

func stm(cli *clientv3.Client) {
	c, cancel := ctx()
	defer cancel()
	_, err := cli.Put(c, "acct/x", "10")
	check("put", err)
	_, err = cli.Put(c, "acct/y", "0")
	check("put", err)
	for _, iso := range []concurrency.Isolation{concurrency.SerializableSnapshot, concurrency.Serializable, concurrency.RepeatableReads, concurrency.ReadCommitted} {
		resp, err := concurrency.NewSTM(cli, func(s concurrency.STM) error {
			x, _ := strconv.Atoi(s.Get("acct/x"))
			y, _ := strconv.Atoi(s.Get("acct/y"))
			s.Put("acct/x", strconv.Itoa(x-1))
			s.Put("acct/y", strconv.Itoa(y+1))
			return nil
		}, concurrency.WithIsolation(iso), concurrency.WithAbortContext(c))
		check("stm", err)
		fmt.Printf("stm %d: rev=%d succeeded=%v\n", iso, resp.Header.Revision, resp.Succeeded)
	}
	get, err := cli.Get(c, "acct/", clientv3.WithPrefix())
	check("get", err)
	fmt.Printf("accounts: %s\n", showGet(get))
}
