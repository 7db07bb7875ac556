package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/shopspring/decimal"
)

// books implements Books on the e-Boekhouden client. It reads the units once.
type books struct {
	c     *eboekhouden.Client
	mu    sync.Mutex
	units map[int64]string // unit ID -> singular name
}

// ebError maps the client's errors onto the ports' sentinels.
func ebError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, eboekhouden.ErrNotFound) {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	var api *eboekhouden.APIError
	if errors.As(err, &api) && api.StatusCode == http.StatusBadRequest {
		return fmt.Errorf("%w: %v", ErrRejected, err)
	}
	return err
}

func idString(id int64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}

func (b *books) ListProducts(ctx context.Context) ([]BookEntry, error) {
	var out []BookEntry
	for item, err := range b.c.Products(ctx) {
		if err != nil {
			return nil, ebError(err)
		}
		out = append(out, BookEntry{ID: idString(item.ID), Code: item.Code, Description: item.Description,
			UnitID: idString(item.UnitID), Active: item.Active})
	}
	return out, nil
}

func (b *books) unitName(ctx context.Context, id int64) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.units == nil {
		units := map[int64]string{}
		for u, err := range b.c.Units(ctx) {
			if err != nil {
				return "", fmt.Errorf("read e-Boekhouden units: %w", ebError(err))
			}
			units[u.ID] = u.Singular
		}
		b.units = units
	}
	return b.units[id], nil
}

func (b *books) GetProduct(ctx context.Context, id string) (Product, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return Product{}, fmt.Errorf("e-Boekhouden product ID %q: %w", id, ErrNotFound)
	}
	p, err := b.c.GetProduct(ctx, n)
	if err != nil {
		return Product{}, ebError(err)
	}
	out := Product{Code: p.Code, Name: p.Description, UnitID: idString(p.UnitID), VATCode: string(p.VAT), Active: p.Active}
	if p.UnitID != 0 {
		if out.Unit, err = b.unitName(ctx, p.UnitID); err != nil {
			return Product{}, err
		}
	}
	info, known := eboekhouden.LookupVATCode(p.VAT)
	if known {
		out.VAT = money(info.Rate)
	}
	if p.PurchasePriceExcl != nil {
		out.PurchasePrice = money(p.PurchasePriceExcl.Decimal)
	} else {
		out.PurchasePrice = money(decimal.Zero)
	}
	switch {
	case p.PriceExcl != nil:
		out.SalesPrice = money(p.PriceExcl.Decimal)
	case p.PriceIncl != nil:
		// Kept incl. VAT, as the bookkeeper keeps it: 10.00 incl. 9% is 10.00 on every invoice
		// line, where 9.17 excl. would make 7 of them 69.97.
		out.SalesPrice, out.VATIncluded = money(p.PriceIncl.Decimal), true
	default:
		out.SalesPrice = money(decimal.Zero)
	}
	return out, nil
}
