package kvstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cano-nats/cano/pkg/kvstore"
)

// HTTPClient is a resource that needs no setup: it embeds the defaults.
type HTTPClient struct {
	kvstore.ResourceDefaults
	BaseURL string
}

// Database reports its setup and teardown.
type Database struct {
	Name string
	Fail bool
}

func (d *Database) Setup(context.Context) error {
	if d.Fail {
		return errors.New("connection refused")
	}
	fmt.Println("setup", d.Name)
	return nil
}

func (d *Database) Teardown(context.Context) error {
	fmt.Println("teardown", d.Name)
	return nil
}

// A worker registers its resources, sets them up in order, looks them up
// by type, and tears them down in reverse order.
func Example_resources() {
	ctx := context.Background()
	var res kvstore.Resources
	res.Insert("users", &Database{Name: "users"})
	res.Insert("http", &HTTPClient{BaseURL: "https://example.com"})
	res.Insert("store", kvstore.NewMemory())
	res.Insert("orders", &Database{Name: "orders", Fail: true})

	err := res.SetupAll(ctx)
	fmt.Println(err)

	// The store, the HTTP client and users were set up, then torn down in
	// reverse order when orders failed: the worker does not start.
	client, err := kvstore.Get[*HTTPClient](&res, "http")
	fmt.Println(client.BaseURL, err)
	_, err = kvstore.Get[*Database](&res, "http")
	fmt.Println(errors.Is(err, kvstore.ErrResourceTypeMismatch))
	fmt.Println(res.Health(ctx))

	// Output:
	// setup users
	// teardown users
	// kvstore: setup of resource "orders" failed: connection refused
	// https://example.com <nil>
	// true
	// healthy
}
