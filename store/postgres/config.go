package postgres

import (
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pgconnConfig parses a DSN into pgx's connection config, with an error that
// does not repeat the password.
func pgconnConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("database %s: %v", Redact(dsn), err)
	}
	return cfg, nil
}
