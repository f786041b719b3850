// Package identity holds the verified client identity: what a client
// certificate chain says about its holder, computed once per connection.
package identity
