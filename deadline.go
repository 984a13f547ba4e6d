package iq

import "time"

// The Caller's deadlines live in a binary min-heap under its mutex, each
// Call knowing its index so that an answered request leaves in O(log n).
// One time.Timer is set for the earliest deadline; when it fires, every
// request that is due fails with ErrTimeout. This costs no allocation per
// request, where a timer each would cost two.

func (c *Caller) pushDeadline(call *Call) {
	call.index = len(c.deadlines)
	c.deadlines = append(c.deadlines, call)
	c.up(call.index)
	if c.deadlines[0] == call {
		c.armTimer(call.deadline)
	}
}

func (c *Caller) removeDeadline(call *Call) {
	i := call.index
	if i < 0 {
		return
	}
	last := len(c.deadlines) - 1
	if i != last {
		c.swap(i, last)
	}
	c.deadlines[last] = nil
	c.deadlines = c.deadlines[:last]
	call.index = -1
	if i != last {
		if !c.down(i) {
			c.up(i)
		}
	}
	// The timer is left as it is: firing early only finds nothing due.
	if cap(c.deadlines) > 1024 && len(c.deadlines) < cap(c.deadlines)/4 {
		c.deadlines = append([]*Call(nil), c.deadlines...)
	}
}

func (c *Caller) armTimer(at time.Time) {
	if c.timer == nil {
		c.timer = time.AfterFunc(time.Until(at), c.expire)
	} else if c.timerAt.IsZero() || at.Before(c.timerAt) {
		c.timer.Reset(time.Until(at))
	} else {
		return
	}
	c.timerAt = at
}

// expire fails every request whose deadline has passed and sets the timer
// for the next one.
func (c *Caller) expire() {
	now := time.Now()
	var due []*Call
	c.mu.Lock()
	c.timerAt = time.Time{}
	for len(c.deadlines) > 0 && !c.deadlines[0].deadline.After(now) {
		call := c.deadlines[0]
		c.removeLocked(call)
		due = append(due, call)
	}
	if len(c.deadlines) > 0 && c.closed == nil {
		c.armTimer(c.deadlines[0].deadline)
	}
	c.mu.Unlock()
	for _, call := range due {
		c.complete(call, nil, timedOut(call.Request.ID, nil))
	}
}

func (c *Caller) less(i, j int) bool {
	return c.deadlines[i].deadline.Before(c.deadlines[j].deadline)
}

func (c *Caller) swap(i, j int) {
	d := c.deadlines
	d[i], d[j] = d[j], d[i]
	d[i].index = i
	d[j].index = j
}

func (c *Caller) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !c.less(j, i) {
			break
		}
		c.swap(i, j)
		j = i
	}
}

func (c *Caller) down(i0 int) bool {
	i, n := i0, len(c.deadlines)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && c.less(r, l) {
			j = r
		}
		if !c.less(j, i) {
			break
		}
		c.swap(i, j)
		i = j
	}
	return i > i0
}
