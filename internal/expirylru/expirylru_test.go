package expirylru

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestDeadline(t *testing.T) {
	c, err := New[string, int](4)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	c.Add("a", 1, now.Add(time.Second))
	if v, ok := c.Get("a", now); !ok || v != 1 {
		t.Fatalf("before the deadline: %v %v", v, ok)
	}
	if _, ok := c.Get("a", now.Add(time.Second)); ok {
		t.Fatal("served at its deadline")
	}
	if c.Contains("a") {
		t.Fatal("an entry found past its deadline was not removed")
	}
	if _, err := New[string, int](0); err == nil {
		t.Fatal("New(0) accepted")
	}
}

// TestRecency: an entry used at least once per window insertions is never evicted, and an
// unused one is evicted first; with fewer than 4 entries the order is exact LRU.
func TestRecency(t *testing.T) {
	for _, size := range []int{2, 3, 16, 100} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			c, _ := New[int, int](size)
			far := time.Unix(1<<40, 0)
			now := time.Unix(0, 0)
			c.Add(-1, -1, far) // the hot entry
			window := size / 4
			for i := 0; i < 10*size; i++ {
				if i%(window+1) == 0 {
					if _, ok := c.Get(-1, now); !ok {
						t.Fatalf("the hot entry was evicted after %d insertions", i)
					}
				}
				c.Add(i, i, far)
				if c.Len() > size {
					t.Fatalf("len %d > size %d", c.Len(), size)
				}
			}
			// The oldest cold entries are gone, the newest are there.
			if c.Contains(0) || !c.Contains(10*size-1) {
				t.Fatal("not the least recently used entries evicted")
			}
		})
	}
}

func TestConcurrentHits(t *testing.T) {
	c, _ := New[int, int](64)
	far := time.Unix(1<<40, 0)
	for i := range 64 {
		c.Add(i, i, far)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10000 {
				k := (i + g) % 64
				if v, ok := c.Get(k, time.Unix(0, 0)); !ok || v != k {
					t.Errorf("Get(%d) = %v %v", k, v, ok)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkHitParallel(b *testing.B) {
	c, _ := New[int, int](1024)
	far := time.Unix(1<<40, 0)
	for i := range 1024 {
		c.Add(i, i, far)
	}
	now := time.Unix(0, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Get(i&1023, now)
			i++
		}
	})
}
