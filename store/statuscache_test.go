package store

import "testing"

func TestStatusCacheDropsAnswersReadBeforeAChange(t *testing.T) {
	c := newStatusCache()
	if _, hit, tok := c.lookup("i", ""); hit || tok.ok {
		t.Fatal("a cache whose listener is down must not serve or store")
	}
	c.setLive(true)
	_, _, tok := c.lookup("i", "")
	c.changed("i") // a change announced while the reader queried
	c.store("i", "", status{found: true}, tok)
	if _, hit, _ := c.lookup("i", ""); hit {
		t.Fatal("an answer read before a change was kept")
	}
	_, _, tok = c.lookup("i", "")
	c.store("i", "", status{found: true, op: Operation{ID: "op"}}, tok)
	if st, hit, _ := c.lookup("i", ""); !hit || st.op.ID != "op" {
		t.Fatal("a fresh answer was not kept")
	}
	c.changed("i")
	if _, hit, _ := c.lookup("i", ""); hit {
		t.Fatal("a change did not drop the instance's answers")
	}
	_, _, tok = c.lookup("i", "op")
	c.setLive(false)
	c.setLive(true) // the listener reconnected: changes may have been missed
	c.store("i", "op", status{found: true}, tok)
	if _, hit, _ := c.lookup("i", "op"); hit {
		t.Fatal("an answer read before a reconnect was kept")
	}
}
