package stats

import (
	"fmt"
	"time"
)

// Tier is one resolution the figures of an instance are kept at over time:
// one point per Step, for Keep. The first tier holds the samples; each
// coarser tier is aggregated from the one before it.
type Tier struct {
	Range string        // name of the range it answers: "1h", "24h", "7d"
	Step  time.Duration // width of one point; divides a day, so buckets align on the Unix epoch
	Keep  time.Duration // how long its points are kept
}

// Points is the number of points the tier holds per instance at most.
func (t Tier) Points() int { return int(t.Keep / t.Step) }

// Bucket returns the start of the Step-long bucket holding at.
func (t Tier) Bucket(at time.Time) time.Time { return at.Truncate(t.Step) }

// Tiers are the tiers for samples taken every interval: the last hour at
// interval, the last 24 hours at 5 minutes, the last 7 days at 30 minutes.
// Errors: an interval under 1s or not dividing 5 minutes (its points would
// not nest in the 5-minute buckets).
func Tiers(interval time.Duration) ([]Tier, error) {
	if interval < time.Second || (5*time.Minute)%interval != 0 {
		return nil, fmt.Errorf("sampling interval %s must be at least 1s and divide 5m", interval)
	}
	return []Tier{
		{Range: "1h", Step: interval, Keep: time.Hour},
		{Range: "24h", Step: 5 * time.Minute, Keep: 24 * time.Hour},
		{Range: "7d", Step: 30 * time.Minute, Keep: 7 * 24 * time.Hour},
	}, nil
}

// TierOf returns the tier of tiers answering range name rng; ok is false
// for a name no tier has.
func TierOf(tiers []Tier, rng string) (Tier, bool) {
	for _, t := range tiers {
		if t.Range == rng {
			return t, true
		}
	}
	return Tier{}, false
}
