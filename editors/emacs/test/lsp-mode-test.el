;;; lsp-mode-test.el --- nib-lsp.el in a real Emacs with lsp-mode, batch mode -*- lexical-binding: t; -*-

;; emacs --batch -Q -L <lsp-mode and its dependencies> -l editors/emacs/nib-lsp.el \
;;   -l editors/emacs/test/lsp-mode-test.el
;;
;; nib runs as an add-on beside the buffer's own server, here pylsp
;; (python-lsp-server from PyPI, on `exec-path' through NIB_PYLSP_BIN).
;; Environment: NIB_SERVER, NIB_MODEL, NIB_PYLSP_BIN, NIB_TEST_RESULTS.

;;; Code:

(require 'cl-lib)
(require 'python)

(load (expand-file-name "nib-test.el" (file-name-directory (or load-file-name buffer-file-name))) nil t)
(setq nib-test-label "emacs-lsp-mode")
(defvar nib-test-dir (make-temp-file "nib-lsp-" t))

(setq nib-lsp-program (or (getenv "NIB_SERVER") (error "NIB_SERVER is not set"))
      nib-lsp-model (getenv "NIB_MODEL")
      nib-lsp-device "cpu"
      ;; Every candidate place is a finding: deterministic with any model.
      nib-lsp-review-min-confidence 0
      exec-path (cons (or (getenv "NIB_PYLSP_BIN") (error "NIB_PYLSP_BIN is not set")) exec-path)
      lsp-session-file (expand-file-name "lsp-session" nib-test-dir)
      lsp-auto-guess-root t
      lsp-enable-file-watchers nil
      lsp-keep-workspace-alive nil
      lsp-restart 'ignore
      lsp-enable-snippet nil
      lsp-headerline-breadcrumb-enable nil
      lsp-modeline-code-actions-enable nil
      lsp-modeline-diagnostics-enable nil
      lsp-modeline-workspace-status-enable nil
      lsp-diagnostics-provider :none
      lsp-log-io nil)

(defun nib-test-server-ids ()
  (mapcar (lambda (w) (lsp--client-server-id (lsp--workspace-client w))) (lsp-workspaces)))

(make-directory (expand-file-name ".git" nib-test-dir) t)
(let ((file (expand-file-name "review.py" nib-test-dir)))
  (with-temp-file file (insert "def check(x):\n    if x == None:\n        return 0\n    return x\n"))
  (find-file file)
  (python-mode))

(nib-test "lsp starts the buffer's own server and nib beside it"
  (lsp)
  (nib-test-wait "pylsp and nib" 60
                 (lambda () (let ((ids (nib-test-server-ids)))
                              (and (memq 'pylsp ids) (memq 'nib ids)))))
  (nib-test-wait "both initialized" 60
                 (lambda () (cl-every (lambda (w) (eq (lsp--workspace-status w) 'initialized))
                                      (lsp-workspaces)))))

(nib-test "a review finding from nib arrives, with nib's quick fix, beside pylsp"
  (nib-test-wait "nib ready" 60
                 (lambda () (with-lsp-workspace (nib-lsp--workspace)
                              (equal (gethash "state" (lsp-request "nib/status" nil)) "ready"))))
  (nib-lsp-review-file)
  (let* ((diag (nib-test-wait "a nib diagnostic on line 2" 90
                              (lambda ()
                                (seq-find (lambda (d) (and (equal (gethash "source" d) "nib")
                                                           (= (gethash "line" (gethash "start" (gethash "range" d))) 1)))
                                          (gethash (buffer-file-name) (lsp-diagnostics t))))))
         (range (gethash "range" diag))
         (actions (with-lsp-workspace (nib-lsp--workspace)
                    (lsp-request "textDocument/codeAction"
                                 (list :textDocument (lsp--text-document-identifier)
                                       :range range
                                       :context (list :diagnostics (vector diag))))))
         (fix (or (seq-find (lambda (a) (string-prefix-p "nib" (gethash "title" a))) actions)
                  (error "no nib code action in %S" actions))))
    (lsp-execute-code-action fix)
    (save-buffer)
    (let ((line2 (with-temp-buffer
                   (insert-file-contents (expand-file-name "review.py" nib-test-dir))
                   (goto-char (point-min)) (forward-line 1)
                   (buffer-substring-no-properties (point) (line-end-position)))))
      (when (equal line2 "    if x == None:")
        (error "the quick fix did not change line 2"))
      (message "[emacs lsp-mode] line 2 after the fix: %S" line2))))

(dolist (w (lsp-workspaces)) (ignore-errors (lsp-workspace-shutdown w)))
(delete-directory nib-test-dir t)
(kill-emacs (if (> nib-test-failed 0) 1 0))
;;; lsp-mode-test.el ends here
