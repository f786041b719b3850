// Package certsource loads certificates, private keys and CA bundles from
// PEM files, with errors that say which file is wrong and how to fix it.
package certsource
