package store

import (
	"context"
	"sort"
	"time"
)

// conversionCounts adds what the period's runs converted: runs converted (in
// all and by ad), conversions by event, the time to each run's first
// conversion, conversions per day, and each split's variants. A conversion
// happens after its run started, so `at >= since` narrows the conversions
// index without changing the result.
func (s *DB) conversionCounts(ctx context.Context, fc *FlowCounts, flowID string, since, until int64, ads map[string]*AdCounts) error {
	rows, err := s.queryR(ctx, "ReportConverted", flowID, since, until)
	if err != nil {
		return err
	}
	for rows.Next() {
		var src string
		var took int64
		if err := rows.Scan(&src, &took); err != nil {
			rows.Close()
			return err
		}
		fc.Converted++
		fc.ToConvert = append(fc.ToConvert, time.Duration(took)*time.Millisecond)
		if a := ads[src]; a != nil {
			a.Converted++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	sort.Slice(fc.ToConvert, func(i, j int) bool { return fc.ToConvert[i] < fc.ToConvert[j] })

	rows, err = s.queryR(ctx, "ReportEvents", flowID, since, until)
	if err != nil {
		return err
	}
	for rows.Next() {
		var e EventTotals
		if err := rows.Scan(&e.Event, &e.Currency, &e.Count, &e.Value); err != nil {
			rows.Close()
			return err
		}
		fc.Events = append(fc.Events, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	rows, err = s.queryR(ctx, "ReportDaily", flowID, since, until)
	if err != nil {
		return err
	}
	for rows.Next() {
		var d DayCount
		if err := rows.Scan(&d.Day, &d.Count); err != nil {
			rows.Close()
			return err
		}
		fc.Daily = append(fc.Daily, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	rows, err = s.queryR(ctx, "ReportSplits", flowID, since, until)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v VariantCounts
		if err := rows.Scan(&v.Step, &v.Variant, &v.Entered, &v.Converted); err != nil {
			return err
		}
		fc.Splits = append(fc.Splits, v)
	}
	return rows.Err()
}
