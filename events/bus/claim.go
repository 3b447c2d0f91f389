package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// claimTolerance is the part of an interval by which instances' clocks
// and tickers may drift without an interval being skipped: a claim is
// granted once at least 90 % of the interval has passed since the last one.
const claimTolerance = 0.9

// Claim reports whether this instance runs the job named key for the
// current interval: across every instance sharing the database and the
// bus's topic, exactly one claim per interval succeeds. Instances call it
// on their own schedule (each every interval); the first to call once
// 90 % of the interval has passed since the last granted claim wins.
//
// It is one atomic upsert on the table <topic>_claims, which NewPostgres
// does not create: Claim creates it on first use. Its query is marked as
// the bus's own work (WithInfrastructureContext).
func (p *Postgres) Claim(ctx context.Context, key string, interval time.Duration) (bool, error) {
	if interval <= 0 {
		return false, errors.New("bus: claim: interval must be positive")
	}
	ctx = p.infra(ctx)
	table := pgx.Identifier{p.cfg.Topic + "_claims"}.Sanitize()
	if err := p.claimsOnce(ctx, table); err != nil {
		return false, err
	}
	q := `INSERT INTO ` + table + ` (name, claimed_at) VALUES ($1, clock_timestamp())
ON CONFLICT (name) DO UPDATE SET claimed_at = clock_timestamp()
WHERE ` + table + `.claimed_at <= clock_timestamp() - make_interval(secs => $2)
RETURNING name`
	var name string
	err := p.pool.QueryRow(ctx, q, key, interval.Seconds()*claimTolerance).Scan(&name)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("bus: claim %q: %w", key, err)
	}
	return true, nil
}

// claimsOnce creates the claims table the first time it succeeds.
func (p *Postgres) claimsOnce(ctx context.Context, table string) error {
	p.claimsMu.Lock()
	defer p.claimsMu.Unlock()
	if p.claimsReady {
		return nil
	}
	_, err := p.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (name TEXT PRIMARY KEY, claimed_at TIMESTAMPTZ NOT NULL)`)
	// Instances starting together race on IF NOT EXISTS: the loser gets
	// a unique violation (23505) or duplicate table (42P07), and the table
	// exists all the same.
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "42P07")) {
		return fmt.Errorf("bus: create claims table: %w", err)
	}
	p.claimsReady = true
	return nil
}
